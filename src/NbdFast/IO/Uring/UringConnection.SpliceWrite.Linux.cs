using Microsoft.Win32.SafeHandles;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Transmission;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// Large WRITE payloads for a page-cache file export travel socket → pipe → file with SPLICE, so the kernel
/// copies each byte once (into the page cache) instead of twice (socket → our buffer, buffer → page cache).
/// The part of the payload that arrived together with the header is written from the receive buffer.
/// Reading waits until the whole payload is in the file, so the connection's one pipe only ever holds one
/// request's bytes and the pipe → file splices (one at a time) take them in order. SPLICE always runs on
/// io_uring's worker threads, which costs a thread hop per step, so small writes keep the ordinary path.
/// A device error does not break framing: the rest of the payload is spliced to /dev/null and the request
/// fails with the device's errno. A payload cut short by a dropped client may leave its range partly written,
/// like a torn write on a disk; it was never acknowledged.
/// Measured (2 vCPUs, fio nbd engine, 1M sequential write QD8, unix socket, page-cache file, interleaved runs,
/// medians): 1736 → 1811 MiB/s (+4%) and 1934 → 2086 MiB/s (+8%) in two sessions. The gain is small because
/// buffered ext4 writes go to io_uring's workers anyway and the copy into the page cache remains; batching
/// the pipe → file steps or raising SO_RCVLOWAT to take bigger pieces from the socket measured slower.
/// NBDFAST_SPLICE_WRITES=0 turns it off for comparison.
/// </summary>
internal sealed unsafe partial class UringConnection
{
    private const int SpliceMinimum = 256 * 1024;
    private const int PipeWanted = 1 << 20;

    internal static readonly bool SpliceWrites = Environment.GetEnvironmentVariable("NBDFAST_SPLICE_WRITES") != "0";

    private static readonly Lazy<SafeFileHandle> s_devNull = new(() => File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Write));

    private int _pipeRead = -1;
    private int _pipeWrite = -1;
    private int _pipeCapacity;

    private int _spliceSocketLeft;
    private int _pipeFill;
    private long _spliceFileOffset;
    private byte* _spliceHead;
    private int _spliceHeadLeft;
    private long _spliceHeadOffset;
    private bool _spliceInPosted;
    private bool _spliceOutPosted;
    private bool _spliceHeadPosted;

    private bool SpliceBusy => _spliceInPosted || _spliceOutPosted || _spliceHeadPosted;

    private bool CanSplice(in NbdRequest request, ulong payload) =>
        SpliceWrites && request.Command == NbdCommand.Write && _deviceFd >= 0 && _direct is null && _reactor.SpliceSupported &&
        payload - (ulong)(_receiveEnd - _receiveStart) >= SpliceMinimum && payload <= int.MaxValue && EnsurePipe();

    /// <summary>The connection's pipe, made on first use and grown to 1 MiB where the limits allow.</summary>
    private bool EnsurePipe()
    {
        if (_pipeRead >= 0)
        {
            return true;
        }
        int* fds = stackalloc int[2];
        if (Pipe2(fds, OCloexec) != 0)
        {
            return false;
        }
        _pipeRead = fds[0];
        _pipeWrite = fds[1];
        _ = Fcntl(_pipeWrite, FSetPipeSize, PipeWanted);
        _pipeCapacity = Fcntl(_pipeWrite, FGetPipeSize, 0);
        if (_pipeCapacity <= 0)
        {
            ClosePipe();
            return false;
        }
        return true;
    }

    /// <summary>Drops the pipe (and any bytes of an abandoned payload in it); only when no splice is posted.</summary>
    private void ClosePipe()
    {
        if (_pipeRead >= 0)
        {
            _ = IoUringNative.Close(_pipeRead);
            _ = IoUringNative.Close(_pipeWrite);
            _pipeRead = _pipeWrite = -1;
        }
        _pipeFill = 0;
    }

    /// <summary>Starts a spliced WRITE; reading pauses until its whole payload is in the file.</summary>
    private bool ReceiveBySplice(UringSlot slot, int payload)
    {
        slot.Started = _context.Metrics.RequestStarted(slot.Received);
        int buffered = Math.Min(payload, _receiveEnd - _receiveStart);
        long offset = (long)slot.Request.Offset;
        // The buffered part is written from the receive buffer, which stays put: nothing new is received
        // into it while a payload is outstanding.
        _spliceHead = _receive + _receiveStart;
        _spliceHeadLeft = buffered;
        _spliceHeadOffset = offset;
        _receiveStart += buffered;
        _spliceFileOffset = offset + buffered;
        _spliceSocketLeft = payload - buffered;
        _pipeFill = 0;
        _payloadSlot = slot;
        if (buffered > 0)
        {
            PostSpliceHead();
        }
        PumpSplice(slot);
        return false;
    }

    private void PostSpliceHead()
    {
        Sqe* sqe = _reactor.GetSqe();
        sqe->Opcode = OpWrite;
        sqe->Fd = _deviceFd;
        sqe->Address = (ulong)_spliceHead;
        sqe->Length = (uint)_spliceHeadLeft;
        sqe->Offset = (ulong)_spliceHeadOffset;
        sqe->UserData = Tag(OpKind.SpliceHead, _payloadSlot!.Index);
        _spliceHeadPosted = true;
        _pendingOps++;
    }

    /// <summary>Keeps one socket → pipe and one pipe → file splice going until the payload is through.</summary>
    private void PumpSplice(UringSlot slot)
    {
        // Each piece goes on to the file as soon as the previous one is written: batching the pieces (fewer
        // worker hops) measured slower, as the socket and file steps then overlap less.
        if (!_spliceOutPosted && _pipeFill > 0)
        {
            // After a device error the rest goes to /dev/null: it must still leave the socket and the pipe.
            bool failed = slot.Outcome != NbdError.None;
            PostSplice(OpKind.SpliceOut, slot, _pipeRead, SpliceNoOffset,
                failed ? (int)s_devNull.Value.DangerousGetHandle() : _deviceFd, failed ? SpliceNoOffset : (ulong)_spliceFileOffset, _pipeFill);
            _spliceOutPosted = true;
        }
        if (!_spliceInPosted && _spliceSocketLeft > 0 && _pipeFill < _pipeCapacity)
        {
            PostSplice(OpKind.SpliceIn, slot, _fd, SpliceNoOffset, _pipeWrite, SpliceNoOffset, Math.Min(_spliceSocketLeft, _pipeCapacity - _pipeFill));
            _spliceInPosted = true;
        }
        if (!SpliceBusy && _spliceSocketLeft == 0 && _pipeFill == 0)
        {
            FinishSplice(slot);
        }
    }

    private void PostSplice(OpKind kind, UringSlot slot, int fdIn, ulong offsetIn, int fdOut, ulong offsetOut, int length)
    {
        Sqe* sqe = _reactor.GetSqe();
        sqe->Opcode = OpSplice;
        sqe->SpliceFdIn = fdIn;
        sqe->Address = offsetIn;
        sqe->Fd = fdOut;
        sqe->Offset = offsetOut;
        sqe->Length = (uint)length;
        sqe->UserData = Tag(kind, slot.Index);
        _pendingOps++;
    }

    private void OnSplice(OpKind kind, UringSlot slot, int result)
    {
        // While any splice of a payload is posted its slot stays the payload slot (StopReading leaves it alone).
        switch (kind)
        {
            case OpKind.SpliceHead:
                _spliceHeadPosted = false;
                OnSpliceHead(slot, result);
                break;
            case OpKind.SpliceIn:
                _spliceInPosted = false;
                if (result <= 0)
                {
                    // 0: the client closed mid-payload, so framing is lost; negative: the socket failed.
                    StopReading(result == 0 ? SessionEnd.FramingLost : SessionEnd.ClientGone);
                }
                else
                {
                    _spliceSocketLeft -= result;
                    _pipeFill += result;
                }
                break;
            case OpKind.SpliceOut:
                _spliceOutPosted = false;
                OnSpliceOut(slot, result);
                break;
        }
        if (_readStopped)
        {
            AbandonSpliceWhenIdle(slot);
            return;
        }
        PumpSplice(slot);
    }

    private void OnSpliceHead(UringSlot slot, int result)
    {
        if (result < 0)
        {
            NoteSpliceError(slot, -result);
            return;
        }
        _spliceHead += result;
        _spliceHeadLeft -= result;
        _spliceHeadOffset += result;
        if (_spliceHeadLeft > 0 && slot.Outcome == NbdError.None && !_readStopped)
        {
            // A short write (the filesystem filling up): the next attempt reports why.
            PostSpliceHead();
        }
    }

    private void OnSpliceOut(UringSlot slot, int result)
    {
        if (result > 0)
        {
            _pipeFill -= result;
            _spliceFileOffset += result;
            return;
        }
        if (slot.Outcome != NbdError.None)
        {
            // Even /dev/null refused the bytes: the payload cannot be consumed, so framing is lost.
            StopReading(SessionEnd.FramingLost);
            return;
        }
        NoteSpliceError(slot, result == 0 ? 5 /* EIO: the file took nothing */ : -result);
    }

    private static void NoteSpliceError(UringSlot slot, int errno)
    {
        if (slot.Outcome == NbdError.None)
        {
            slot.Outcome = BlockDeviceException.FromErrno(errno);
        }
    }

    /// <summary>The whole payload is in the file (or the device failed): answer, then go on reading.</summary>
    private void FinishSplice(UringSlot slot)
    {
        _payloadSlot = null;
        if (slot.Outcome != NbdError.None)
        {
            QueueError(slot, slot.Outcome, "device I/O failed");
        }
        else if ((slot.Request.Flags & NbdCommandFlags.Fua) != 0)
        {
            SubmitFsync(slot);
        }
        else
        {
            QueueSuccess(slot);
        }
        ProcessInput();
    }

    /// <summary>Reading stopped mid-payload: once no splice is posted, the slot goes back and the pipe's leftovers with it.</summary>
    private void AbandonSpliceWhenIdle(UringSlot slot)
    {
        if (SpliceBusy || _payloadSlot != slot)
        {
            return;
        }
        _payloadSlot = null;
        ClosePipe();
        ReleaseSlot(slot);
    }
}
