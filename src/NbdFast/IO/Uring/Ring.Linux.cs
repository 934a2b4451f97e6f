using System.Diagnostics;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// One io_uring instance: the mapped submission and completion rings. Not thread-safe by design: the reactor
/// that creates it is its only user (the ring is set up SINGLE_ISSUER where the kernel allows).
/// </summary>
internal sealed unsafe partial class Ring : IDisposable
{
    private readonly int _fd;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint _sqMask;
    private readonly uint* _sqArray;
    private readonly Sqe* _sqes;
    private readonly uint _sqEntries;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly Cqe* _cqes;
    private readonly void* _sqRing;
    private readonly nuint _sqRingSize;
    private readonly void* _cqRing;
    private readonly nuint _cqRingSize;
    private readonly nuint _sqesSize;
    private uint _sqTailLocal;
    private uint _toSubmit;
    private bool _disposed;

    // io_uring_enter's ring argument: the ring's slot in this thread's registered-ring table when registration
    // worked (the kernel then skips looking the fd up on every enter), else the fd.
    private int _enterFd;
    private uint _enterFlags;

    private Ring(int fd, in Params p)
    {
        _fd = fd;
        Features = p.Features;
        SetupFlags = p.Flags;
        _sqEntries = p.SqEntries;
        _sqRingSize = p.SqOff.Array + p.SqEntries * sizeof(uint);
        _cqRingSize = p.CqOff.Cqes + p.CqEntries * (uint)sizeof(Cqe);
        bool singleMmap = (p.Features & FeatSingleMmap) != 0;
        if (singleMmap)
        {
            _sqRingSize = _cqRingSize = Math.Max(_sqRingSize, _cqRingSize);
        }
        _sqRing = MapOrThrow(_sqRingSize, OffSqRing);
        _cqRing = singleMmap ? _sqRing : MapOrThrow(_cqRingSize, OffCqRing);
        _sqesSize = p.SqEntries * (uint)sizeof(Sqe);
        _sqes = (Sqe*)MapOrThrow(_sqesSize, OffSqes);

        byte* sq = (byte*)_sqRing;
        _sqHead = (uint*)(sq + p.SqOff.Head);
        _sqTail = (uint*)(sq + p.SqOff.Tail);
        _sqMask = *(uint*)(sq + p.SqOff.RingMask);
        _sqArray = (uint*)(sq + p.SqOff.Array);
        byte* cq = (byte*)_cqRing;
        _cqHead = (uint*)(cq + p.CqOff.Head);
        _cqTail = (uint*)(cq + p.CqOff.Tail);
        _cqMask = *(uint*)(cq + p.CqOff.RingMask);
        _cqes = (Cqe*)(cq + p.CqOff.Cqes);
        _sqTailLocal = Volatile.Read(ref *_sqTail);
        _enterFd = fd;
    }

    /// <summary>True when the ring fd is registered with the calling (reactor) thread.</summary>
    public bool RingFdRegistered => (_enterFlags & EnterRegisteredRing) != 0;

    /// <summary>
    /// Registers the ring fd in the calling thread's registered-ring table, so enter need not look it up
    /// each time (Linux 5.18). Only that thread may enter the ring afterwards, which SINGLE_ISSUER already
    /// demands of the reactor. Failing is harmless: enter keeps using the fd.
    /// </summary>
    public void RegisterRingFd()
    {
        var update = new RsrcUpdate { Offset = uint.MaxValue, Data = (ulong)_fd };
        if (Register(_fd, RegisterRingFds, &update, 1) == 1)
        {
            _enterFd = (int)update.Offset;
            _enterFlags = EnterRegisteredRing;
        }
    }

    /// <summary>Kernel feature bits (IORING_FEAT_*).</summary>
    public uint Features { get; }

    /// <summary>The setup flags the kernel accepted.</summary>
    public uint SetupFlags { get; }

    public int Fd => _fd;

    /// <summary>Free submission entries.</summary>
    public uint SqSpace => _sqEntries - (_sqTailLocal - Volatile.Read(ref *_sqHead));

    /// <summary>
    /// Returns a zeroed submission entry, or null when the queue is full (submit first). Zeroing matters:
    /// a stale field from the previous user of the entry would change the meaning of the new one.
    /// </summary>
    public Sqe* TryGetSqe()
    {
        if (_sqTailLocal - Volatile.Read(ref *_sqHead) >= _sqEntries)
        {
            return null;
        }
        uint index = _sqTailLocal & _sqMask;
        Sqe* sqe = &_sqes[index];
        *sqe = default;
        _sqArray[index] = index;
        _sqTailLocal++;
        _toSubmit++;
        return sqe;
    }

    /// <summary>
    /// Publishes queued entries and enters the kernel, waiting for at least <paramref name="waitFor"/>
    /// completions. Returns 0 or -errno (EINTR is retried; EBUSY/EAGAIN mean: reap first).
    /// </summary>
    public int SubmitAndWait(uint waitFor)
    {
        Volatile.Write(ref *_sqTail, _sqTailLocal);
        // GETEVENTS always: with DEFER_TASKRUN completions are only produced when the owner asks.
        uint flags = EnterGetEvents | _enterFlags;
        while (true)
        {
            int result = Enter(_enterFd, _toSubmit, waitFor, flags);
            if (result >= 0)
            {
                _toSubmit -= (uint)Math.Min(result, (int)_toSubmit);
                return 0;
            }
            if (result != -4) // EINTR
            {
                return result;
            }
        }
    }

    /// <summary>True when completions are waiting in the ring (what a non-waiting enter produced).</summary>
    public bool HasCompletions => *_cqHead != Volatile.Read(ref *_cqTail);

    /// <summary>Copies up to <paramref name="destination"/>.Length completions out and consumes them.</summary>
    public int Reap(Span<Cqe> destination)
    {
        uint head = *_cqHead;
        uint tail = Volatile.Read(ref *_cqTail);
        int count = 0;
        while (head != tail && count < destination.Length)
        {
            destination[count++] = _cqes[head & _cqMask];
            head++;
        }
        Volatile.Write(ref *_cqHead, head);
        return count;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Munmap(_sqes, _sqesSize);
        if (_cqRing != _sqRing)
        {
            Munmap(_cqRing, _cqRingSize);
        }
        Munmap(_sqRing, _sqRingSize);
        if (RingFdRegistered)
        {
            // The slot holds its own reference to the ring: without this the ring would outlive the close
            // until the thread exits. Dispose runs on the reactor thread, whose table the slot is in.
            var update = new RsrcUpdate { Offset = (uint)_enterFd };
            Register(_fd, UnregisterRingFds, &update, 1);
        }
        Close(_fd);
    }

    private void* MapOrThrow(nuint size, long offset)
    {
        void* address = Mmap(null, size, ProtRead | ProtWrite, MapShared | MapPopulate, _fd, offset);
        if ((nint)address == -1)
        {
            throw new IOException($"mmap of the io_uring failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        }
        return address;
    }

    [Conditional("DEBUG")]
    public void AssertOwner(int threadId) => Debug.Assert(Environment.CurrentManagedThreadId == threadId, "ring used off its reactor thread");
}
