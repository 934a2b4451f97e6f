using System.Net.Sockets;
using System.Runtime.InteropServices;
using NbdFast.Devices;
using NbdFast.Transmission;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// The transmission phase of one connection on an io_uring reactor, as an inline state machine driven by
/// completions: one receive outstanding, requests started as soon as their header (and payload) is in,
/// device I/O on the same ring, and at most one SENDMSG in flight carrying every reply that is ready.
/// All methods run on the owning reactor's thread.
/// </summary>
internal sealed unsafe partial class UringConnection : IReactorWork
{
    private const int ReceiveCapacity = 128 * 1024;
    private const int MaxSendIovecs = 1024;

    private readonly Reactor _reactor;
    private readonly Socket _socket;
    private readonly int _fd;
    private readonly TransmissionContext _context;
    private readonly RequestExecutor _executor;
    private readonly MemoryDevice? _memory;
    private readonly FileDevice? _direct;
    private readonly FileDevice? _file;
    private bool _mappingWanted;        // see UringConnection.MappedRead
    private IO.Posix.FileMapping? _mapping;
    private readonly ResidencyTrust _residencyTrust = new();
    private readonly bool _fallocateOnRing;
    private readonly int _deviceFd = -1;
    private int _ringFd;                // what SQEs name the socket and the device by: see UringConnection.FixedFiles
    private int _ringDeviceFd = -1;
    private byte _fixedFileFlag;
    private readonly bool _inlineWriteCandidate;   // see UringConnection.InlineWrite
    private readonly uint _maxInlineWrite;
    private readonly TaskCompletionSource<SessionEnd> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly UringSlot[] _slots;
    private SlotIndexStack _freeSlots;
    private SlotIndexRing _sendQueue;
    private int _index = -1;
    private int _generation;

    private byte* _receive;
    private int _receiveStart;
    private int _receiveEnd;
    private bool _receivePosted;
    private bool _readStopped;
    private bool _pausedForBudget;
    private UringSlot? _payloadSlot;
    private long _drainRemaining;
    private UringSlot? _drainReply;

    private MsgHdr* _message;
    private IoVec* _sendIovecs;
    private bool _sendPosted;
    private bool _sendScheduled;
    private int _sendSlots;
    private bool _broken;

    private int _inFlight;
    private long _inFlightBytes;
    private int _pendingOps;
    private SessionEnd _end = SessionEnd.ClientGone;
    private bool _endSet;
    private bool _closed;

    public UringConnection(Reactor reactor, Socket socket, TransmissionContext context)
    {
        _reactor = reactor;
        _socket = socket;
        // Hold the descriptor open for as long as the ring may use it, whoever disposes the socket meanwhile
        // (a closed fd number can be reused by the next accept, and a late completion would hit that socket).
        bool added = false;
        socket.SafeHandle.DangerousAddRef(ref added);
        _fd = (int)socket.SafeHandle.DangerousGetHandle();
        _context = context;
        _executor = new RequestExecutor(context);
        _memory = context.Device as MemoryDevice;
        if (context.Device is FileDevice file)
        {
            _deviceFd = (int)file.Handle.DangerousGetHandle();
            _direct = file.Direct ? file : null;
            _file = file;
            _mappingWanted = MappedReads && !file.Direct;
            _fallocateOnRing = !file.IsBlockDevice;
            _inlineWriteCandidate = InlineWrites && !file.Direct && !file.IsBlockDevice;
            _maxInlineWrite = socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6
                ? MaxInlineWriteTcp
                : MaxInlineWrite;
        }
        int slots = context.Options.MaxInFlightRequests;
        _slots = new UringSlot[slots];
        _freeSlots = new SlotIndexStack(slots);
        for (int i = slots - 1; i >= 0; i--)
        {
            _slots[i] = new UringSlot(this, i);
            _freeSlots.Push(i);
        }
        _sendQueue = new SlotIndexRing(slots);
        _timerWork = new TimerWork(this);
    }

    /// <summary>The reactor that owns (or will adopt) the connection.</summary>
    public Reactor Reactor => _reactor;

    /// <summary>Completes when the connection has closed, with the reason.</summary>
    public Task<SessionEnd> Completion => _done.Task;

    /// <summary>Adoption by the reactor (posted from the thread that finished the handshake).</summary>
    public void Run(Reactor reactor)
    {
        if (!reactor.TryRegister(this, out _index, out _generation))
        {
            _index = -1;
            _readStopped = true;
            SetEnd(SessionEnd.ClientGone);
            Close();
            return;
        }
        TakeFixedFileSlots();
        _receive = (byte*)NativeMemory.Alloc(ReceiveCapacity);
        _message = (MsgHdr*)NativeMemory.AllocZeroed((nuint)sizeof(MsgHdr));
        _sendIovecs = (IoVec*)NativeMemory.Alloc((nuint)(MaxSendIovecs * sizeof(IoVec)));
        StartIdleTimer();
        PostReceive();
        // A stop or abort requested before adoption was only recorded (see LifecycleWork): act on it now.
        if (Volatile.Read(ref _abortRequested) != 0)
        {
            AbortOnReactor();
        }
        MaybeClose();
    }

    /// <summary>Routes a completion of this connection.</summary>
    public void OnCompletion(OpKind kind, int slot, int result)
    {
        _pendingOps--;
        switch (kind)
        {
            case OpKind.Receive:
                OnReceive(result);
                break;
            case OpKind.ReceivePayload:
                OnPayload(_slots[slot], result);
                break;
            case OpKind.Send:
                OnSent(result);
                break;
            case OpKind.DeviceRead when _slots[slot].Linked:
                OnLinkedRead(_slots[slot], result);
                break;
            case OpKind.LinkedSend:
                OnLinkedSend(_slots[slot], result);
                break;
            case OpKind.DeviceFallocate:
                OnFallocated(_slots[slot], result);
                break;
            case OpKind.FinalFlush:
                FinishFinalFlush(result < 0 ? new BlockDeviceException(BlockDeviceException.FromErrno(-result), $"the final flush failed (errno {-result})") : null);
                break;
            case OpKind.DeviceRead:
            case OpKind.DeviceWrite:
            case OpKind.DeviceFsync:
                OnDeviceCompletion(kind, _slots[slot], result);
                break;
        }
        MaybeClose();
    }

    private void SetEnd(SessionEnd end)
    {
        if (!_endSet)
        {
            _endSet = true;
            _end = end;
        }
    }

    private void StopReading(SessionEnd end)
    {
        SetEnd(end);
        _readStopped = true;
        if (_payloadSlot is not null && !_receivePosted)
        {
            // A write whose payload never fully arrived is not applied. (With its receive still posted, the
            // kernel may yet write into the buffer: OnPayload releases it when that receive completes.)
            ReleaseSlot(_payloadSlot);
            _payloadSlot = null;
        }
        if (_drainReply is not null)
        {
            ReleaseSlot(_drainReply);
            _drainReply = null;
        }
    }

    /// <summary>
    /// Runs after every event: moves a graceful shutdown on (flush once nothing is in flight) and closes
    /// once reading has stopped and no submission, request, send or flush is outstanding.
    /// </summary>
    private void MaybeClose()
    {
        if (_closed)
        {
            return;
        }
        AdvanceShutdown();
        if (_readStopped && _pendingOps == 0 && _inFlight == 0 && !_sendPosted && _finalFlush != FlushState.Running)
        {
            Close();
        }
    }

    private void Close()
    {
        _closed = true;
        _timer?.Dispose();
        if (_index >= 0)
        {
            ReleaseFixedFiles();
            _reactor.Unregister(_index);
        }
        foreach (UringSlot slot in _slots)
        {
            slot.Reset(_reactor.Buffers);
            slot.Dispose();
        }
        NativeMemory.Free(_receive);
        NativeMemory.Free(_message);
        NativeMemory.Free(_sendIovecs);
        _receive = null;
        // Only now, with nothing of ours left in the kernel, may the descriptor be closed.
        _socket.SafeHandle.DangerousRelease();
        _socket.Dispose();
        if (_flushError is not null)
        {
            _done.TrySetException(_flushError);
        }
        else
        {
            _done.TrySetResult(_end);
        }
    }

    private ulong Tag(OpKind kind, int slot = 0) => UserData.Pack(kind, _index, slot, _generation);
}
