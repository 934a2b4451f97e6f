using System.Buffers;
using System.Runtime.InteropServices;
using NbdFast.Buffers;
using NbdFast.Protocol;
using NbdFast.Transmission;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// One request in flight on a ring connection: its header, its aligned data buffer, a native area for the
/// reply header and the iovecs its reply is sent from. Preallocated per connection and reused, so the
/// steady state allocates nothing. Reactor thread only, except <see cref="Run"/>'s hand-back.
/// </summary>
internal sealed unsafe class UringSlot : IReactorWork, IDisposable
{
    public const int HeaderArea = 256;
    private const int InitialIovecs = 4;

    public UringSlot(UringConnection owner, int index)
    {
        Owner = owner;
        Index = index;
        Header = (byte*)NativeMemory.AlignedAlloc(HeaderArea, 64);
        Message = (MsgHdr*)NativeMemory.AllocZeroed((nuint)sizeof(MsgHdr));
        EnsureIovecsKeep(InitialIovecs);
    }

    public UringConnection Owner { get; }
    public int Index { get; }

    public NbdRequest Request;
    public long Cost;

    /// <summary>When the header was parsed (0: not measured), whether the request counts as in flight, and the error its reply carries.</summary>
    public long Received;
    public bool Started;
    public NbdError Outcome;
    public NativeBuffer Data;
    /// <summary>Bytes of the device operation done so far (short reads and writes resume from here).</summary>
    public int Progress;
    public byte* Header { get; }

    /// <summary>The slot's own message header, for a SENDMSG linked behind its device read.</summary>
    public MsgHdr* Message { get; }

    /// <summary>A linked READ→SENDMSG pair is in flight; the read's result when it did not fill the buffer.</summary>
    public bool Linked;
    public int LinkedReadResult;
    public IoVec* Iov { get; private set; }
    public int IovCount;
    private int _iovCapacity;

    /// <summary>The reply's data iovec points into the device's file mapping, not into <see cref="Data"/>.</summary>
    public bool Mapped;

    /// <summary>This request's write holds its O_DIRECT device's gate in shared mode.</summary>
    public bool HoldsWriteGate;

    /// <summary>The slot only carries an ESHUTDOWN reply to a request that arrived during shutdown.</summary>
    public bool ShutdownReply;

    /// <summary>Reply bytes still to send.</summary>
    public long ReplyRemaining;

    /// <summary>For requests run through <see cref="RequestExecutor"/>: its context and the pinned reply.</summary>
    public RequestContext? Managed;
    public MemoryHandle ReplyPin;
    public ReadOnlyMemory<byte> ExecutorReply;

    public Span<byte> HeaderSpan => new(Header, HeaderArea);

    public void AddIovec(byte* pointer, long length)
    {
        EnsureIovecsKeep(IovCount + 1);
        Iov[IovCount++] = new IoVec { Base = pointer, Length = (nuint)length };
        ReplyRemaining += length;
    }

    /// <summary>Makes the reply the first <paramref name="length"/> bytes of the header area.</summary>
    public void SetSmallReply(int length)
    {
        IovCount = 0;
        ReplyRemaining = 0;
        AddIovec(Header, length);
    }

    /// <summary>Drops <paramref name="sent"/> bytes from the front of the reply after a short send.</summary>
    public void Advance(long sent)
    {
        ReplyRemaining -= sent;
        int first = 0;
        while (sent > 0)
        {
            long length = (long)Iov[first].Length;
            if (sent >= length)
            {
                sent -= length;
                first++;
                continue;
            }
            Iov[first].Base = (byte*)Iov[first].Base + sent;
            Iov[first].Length = (nuint)(length - sent);
            sent = 0;
        }
        for (int i = first; i < IovCount; i++)
        {
            Iov[i - first] = Iov[i];
        }
        IovCount -= first;
    }

    /// <summary>Readies the slot for a new request.</summary>
    public void Begin(in NbdRequest request, long cost, long received)
    {
        Request = request;
        Cost = cost;
        ShutdownReply = false;
        Received = received;
        Started = false;
        Outcome = NbdError.None;
        Progress = 0;
        Mapped = false;
        IovCount = 0;
        ReplyRemaining = 0;
    }

    /// <summary>Releases what the finished request held; the data buffer goes back to <paramref name="pool"/>.</summary>
    public void Reset(AlignedBufferPool pool)
    {
        // Most requests (memory reads and writes taken from the receive buffer) hold neither: skip the stores.
        if (!Data.IsEmpty)
        {
            pool.Return(Data);
            Data = default;
        }
        if (Managed is not null)
        {
            ReplyPin.Dispose();
            ReplyPin = default;
            ExecutorReply = default;
            Managed.Reset();
        }
    }

    /// <summary>The executor finished on another thread: continue on the reactor.</summary>
    public void Run(Reactor reactor) => Owner.OnExecutorDone(this);

    public void Dispose()
    {
        NativeMemory.AlignedFree(Header);
        NativeMemory.Free(Message);
        if (Iov != null)
        {
            NativeMemory.Free(Iov);
        }
    }

    /// <summary>Grows the iovec array, keeping the entries already there.</summary>
    private void EnsureIovecsKeep(int count)
    {
        if (count <= _iovCapacity)
        {
            return;
        }
        int capacity = Math.Max(count, _iovCapacity * 2);
        var grown = (IoVec*)NativeMemory.Alloc((nuint)(capacity * sizeof(IoVec)));
        Buffer.MemoryCopy(Iov, grown, capacity * sizeof(IoVec), IovCount * sizeof(IoVec));
        NativeMemory.Free(Iov);
        Iov = grown;
        _iovCapacity = capacity;
    }
}
