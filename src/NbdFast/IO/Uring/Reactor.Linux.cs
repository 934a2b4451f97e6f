using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using NbdFast.Buffers;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// A thread that owns one io_uring and the connections handed to it. Everything the reactor owns is touched
/// only on its thread, so the data path takes no locks. Other threads talk to it through <see cref="Post"/>:
/// a lock-free queue plus an eventfd wake-up that is only written while the reactor sleeps.
/// </summary>
internal sealed unsafe partial class Reactor : IDisposable
{
    private const uint RingEntries = 1024;
    private const uint CompletionEntries = 4096;
    private const int MaxConnections = 4096;

    private readonly ConcurrentQueue<IReactorWork> _inbox = new();
    private readonly UringConnection?[] _connections = new UringConnection?[MaxConnections];
    private readonly int[] _generations = new int[MaxConnections];
    private readonly Stack<int> _freeIndices = new();
    private readonly List<UringConnection> _pendingSends = new();
    private readonly Cqe[] _completions = new Cqe[512];
    private readonly ManualResetEventSlim _started = new();
    private readonly Thread _thread;
    private Ring? _ring;
    private int _eventFd = -1;
    private ulong* _eventValue;
    private int _sleeping;
    private volatile bool _stopping;
    private string? _startError;

    private readonly long _slabSize;

    private Reactor(int id, long slabSize)
    {
        Id = id;
        _slabSize = slabSize;
        for (int i = MaxConnections - 1; i >= 0; i--)
        {
            _freeIndices.Push(i);
        }
        _thread = new Thread(Run) { IsBackground = true, Name = $"nbdfast-uring-{id}" };
    }

    public int Id { get; }

    /// <summary>Buffers for device I/O; reactor thread only.</summary>
    public AlignedBufferPool Buffers { get; private set; } = null!;

    /// <summary>True when the buffer slab is registered with the ring (READ_FIXED/WRITE_FIXED usable).</summary>
    public bool FixedBuffers { get; private set; }

    /// <summary>The ring has a fixed-file table: two slots per connection index, its socket and its device.</summary>
    public bool FixedFiles { get; private set; }

    // Settable so a test can start reactors without the table (the path a kernel that refuses it takes).
    internal static bool UseFixedFiles = Environment.GetEnvironmentVariable("NBDFAST_FIXED_FILES") != "0";

    public static int SocketFileSlot(int connectionIndex) => connectionIndex;

    public static int DeviceFileSlot(int connectionIndex) => MaxConnections + connectionIndex;

    /// <summary>The tripwire for page-cache READs sent unchecked on this thread.</summary>
    internal ResidencyWatch Residency { get; } = new();

    /// <summary>How buffer registration went, for the log.</summary>
    public string BufferStatus { get; private set; } = "";

    /// <summary>Starts a reactor thread and waits until its ring exists; null with a reason when io_uring is unusable.</summary>
    public static Reactor? TryStart(int id, long registeredBufferBytes, out string? error)
    {
        var reactor = new Reactor(id, registeredBufferBytes);
        reactor._thread.Start();
        reactor._started.Wait();
        error = reactor._startError;
        return error is null ? reactor : null;
    }

    /// <summary>Runs <paramref name="work"/> on the reactor thread. Safe from any thread.</summary>
    public void Post(IReactorWork work)
    {
        _inbox.Enqueue(work);
        // The enqueue must be visible before we look at the flag (the reactor sets the flag, then re-checks the queue).
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _sleeping) != 0)
        {
            ulong one = 1;
            Write(_eventFd, &one, sizeof(ulong));
        }
    }

    /// <summary>Managed bytes allocated so far by the reactor thread (read on that thread).</summary>
    internal Task<long> MeasureAllocatedBytesAsync() => ReadOnThreadAsync(_ => GC.GetAllocatedBytesForCurrentThread());

    /// <summary>Connections the reactor still owns and buffer bytes still rented (read on that thread), for leak tests.</summary>
    internal Task<(int Connections, long BufferBytes)> MeasureResourcesAsync() =>
        ReadOnThreadAsync(r => (r.ActiveConnections, r.Buffers.OutstandingBytes));

    /// <summary>How many times a connection here started trusting the page cache, and how many times a major fault ended it (for tests).</summary>
    internal Task<(int Starts, int Trips)> MeasureResidencyTrustAsync() =>
        ReadOnThreadAsync(r => (r.Residency.TrustStarts, r.Residency.Trips));

    /// <summary>Reads reactor-owned state on the reactor's thread (for tests and leak checks).</summary>
    private Task<T> ReadOnThreadAsync<T>(Func<Reactor, T> read)
    {
        var probe = new Probe<T>(read);
        Post(probe);
        return probe.Result.Task;
    }

    private sealed class Probe<T>(Func<Reactor, T> read) : IReactorWork
    {
        public TaskCompletionSource<T> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Run(Reactor reactor) => Result.SetResult(read(reactor));
    }

    /// <summary>Stops the loop after the connections it owns have closed themselves.</summary>
    public void Dispose()
    {
        _stopping = true;
        ulong one = 1;
        if (_eventFd >= 0)
        {
            Write(_eventFd, &one, sizeof(ulong));
        }
        _thread.Join(TimeSpan.FromSeconds(5));
    }

    internal Ring Ring => _ring!;

    /// <summary>
    /// Whether request metrics have a listener, read once per loop turn rather than for every request header
    /// (it checks five instruments). A listener that attaches mid-turn counts from the next turn.
    /// </summary>
    internal bool RequestsObserved { get; private set; }

    private void Run()
    {
        _ring = Ring.TryCreate(RingEntries, CompletionEntries, out int errno);
        if (_ring is null)
        {
            _startError = $"io_uring_setup failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
            _started.Set();
            return;
        }
        if (MissingOpcode(_ring.ProbeOpcodes()) is string missing)
        {
            _startError = $"the kernel's io_uring lacks {missing}";
            _ring.Dispose();
            _started.Set();
            return;
        }
        _eventFd = EventFd(0, EfdCloexec);
        _eventValue = (ulong*)NativeMemory.AlignedAlloc(8, 8);
        if (_eventFd < 0)
        {
            _startError = "eventfd failed";
            _ring.Dispose();
            _started.Set();
            return;
        }
        SetUpBuffers();
        FixedFiles = UseFixedFiles && _ring.RegisterSparseFiles(2 * MaxConnections);
        _ring.RegisterRingFd();
        _started.Set();
        try
        {
            ArmWake();
            Loop();
        }
        catch (Exception e)
        {
            // A broken reactor would silently stall every connection it owns: fail loudly instead.
            Environment.FailFast("nbdfast io_uring reactor failed", e);
        }
        finally
        {
            _ring.Dispose();
            Close(_eventFd);
            NativeMemory.AlignedFree(_eventValue);
            Buffers.Dispose();
        }
    }

    /// <summary>
    /// One slab per reactor, registered as fixed buffer 0 when the memlock budget allows (root, CAP_IPC_LOCK or
    /// a large enough RLIMIT_MEMLOCK). When the kernel refuses (ENOMEM), the same memory serves unregistered.
    /// </summary>
    private void SetUpBuffers()
    {
        Buffers = new AlignedBufferPool(_slabSize);
        if (_slabSize <= 0)
        {
            BufferStatus = "fixed buffers off";
            return;
        }
        var iov = new IoVec { Base = Buffers.Slab, Length = (nuint)Buffers.SlabSize };
        int result = _ring!.RegisterBuffers(&iov, 1);
        FixedBuffers = result == 0;
        BufferStatus = FixedBuffers
            ? $"{Buffers.SlabSize >> 20} MiB of fixed buffers registered"
            : $"fixed buffers not registered ({Marshal.GetPInvokeErrorMessage(-result)}); using unregistered buffers";
    }

    /// <summary>The opcodes the data path relies on; null when all are there.</summary>
    private static string? MissingOpcode(bool[] supported)
    {
        (byte Op, string Name)[] required =
        [
            (OpRecv, "RECV"), (OpSendMsg, "SENDMSG"), (OpRead, "READ"), (OpWrite, "WRITE"),
            (OpReadFixed, "READ_FIXED"), (OpWriteFixed, "WRITE_FIXED"), (OpFsync, "FSYNC"),
        ];
        foreach ((byte op, string name) in required)
        {
            if (!supported[op])
            {
                return name;
            }
        }
        return null;
    }

    private void Loop()
    {
        while (true)
        {
            RequestsObserved = NbdFast.Diagnostics.NbdMetrics.RequestsObserved;
            DrainInbox();
            FlushSends();
            if (_stopping && ActiveConnections == 0)
            {
                return;
            }
            if (ShouldSpin())
            {
                // Before the sleeping flag is set, so work posted meanwhile needs no eventfd write: the poll
                // sees the queue, and the check below catches what arrives after it.
                SpinForCompletions();
            }
            uint waitFor = 1;
            Volatile.Write(ref _sleeping, 1);
            Interlocked.MemoryBarrier();
            if (!_inbox.IsEmpty || _pendingSends.Count > 0)
            {
                waitFor = 0;
            }
            int result = _ring!.SubmitAndWait(waitFor);
            Volatile.Write(ref _sleeping, 0);
            if (result < 0 && result != -16 && result != -11 && result != -62) // EBUSY, EAGAIN, ETIME: reap and go on
            {
                throw new IOException($"io_uring_enter failed with errno {-result}");
            }
            ReapCompletions();
            NoteTurnRequests();
            if (Residency.WantsFaultCount)
            {
                Residency.AfterTurn(NbdFast.IO.Posix.ThreadFaults.Major());
            }
            Residency.EndTurn();
        }
    }

    private void DrainInbox()
    {
        while (_inbox.TryDequeue(out IReactorWork? work))
        {
            work.Run(this);
        }
    }

    private void ArmWake()
    {
        Sqe* sqe = GetSqe();
        sqe->Opcode = OpRead;
        sqe->Fd = _eventFd;
        sqe->Address = (ulong)_eventValue;
        sqe->Length = sizeof(ulong);
        sqe->UserData = UserData.Pack(OpKind.Wake, 0, 0, 0);
    }

    /// <summary>A submission entry; submits what is queued first when the queue is full.</summary>
    internal Sqe* GetSqe()
    {
        Sqe* sqe = _ring!.TryGetSqe();
        while (sqe == null)
        {
            // The queue is full: hand it to the kernel. The completion ring is sized for every op in flight,
            // so the kernel has room for their completions (and FEAT_NODROP covers the rest).
            int result = _ring.SubmitAndWait(0);
            if (result < 0 && result != -16 && result != -11)
            {
                throw new IOException($"io_uring_enter failed with errno {-result}");
            }
            sqe = _ring.TryGetSqe();
        }
        return sqe;
    }
}
