using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Transmission;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// Starting a validated request: memory devices are served inline with replies pointing into the device's
/// own memory; file devices get READ/WRITE/FSYNC on this ring; everything else runs through the shared
/// <see cref="RequestExecutor"/> and comes back through the reactor's queue.
/// </summary>
internal sealed unsafe partial class UringConnection
{
    private void Start(UringSlot slot)
    {
        NbdRequest request = slot.Request;
        slot.Started = _context.Metrics.RequestStarted(slot.Received);
        if (_memory is not null)
        {
            StartOnMemory(slot, request);
        }
        else if (_deviceFd >= 0 && request.Command is NbdCommand.Read or NbdCommand.Write or NbdCommand.Flush && RingCanTake(slot, request))
        {
            StartOnFile(slot, request);
        }
        else if (_fallocateOnRing && request.Command is NbdCommand.Trim or NbdCommand.WriteZeroes && request.Length > 0)
        {
            SubmitFallocate(slot, request);
        }
        else
        {
            RunOnExecutor(slot);
        }
    }

    private void StartOnMemory(UringSlot slot, in NbdRequest request)
    {
        switch (request.Command)
        {
            case NbdCommand.Read when !WantsSparseReply(request):
                QueueMemoryRead(slot, request);
                return;
            case NbdCommand.Write:
                WriteToMemory(slot, slot.Data.Pointer);
                return;
            case NbdCommand.Flush:
                QueueSuccess(slot);
                return;
            default:
                // Trim, zeroing, cache, block status and sparse reads complete synchronously on memory.
                RunOnExecutor(slot);
                return;
        }
    }

    /// <summary>Memory takes a write synchronously: copy the payload in and answer.</summary>
    private void WriteToMemory(UringSlot slot, byte* payload)
    {
        _memory!.Write((long)slot.Request.Offset, new ReadOnlySpan<byte>(payload, (int)slot.Request.Length));
        QueueSuccess(slot);
    }

    /// <summary>A sparse (OFFSET_HOLE) reply is only worth building when the range really has a hole.</summary>
    private bool WantsSparseReply(in NbdRequest request) =>
        _context.StructuredReplies && (request.Flags & NbdCommandFlags.DontFragment) == 0 &&
        request.Length >= RequestExecutor.SparseReadThreshold && _memory!.HasHole((long)request.Offset, (long)request.Length);

    /// <summary>
    /// The reply header, then one iovec straight into the device's memory: nothing is copied. The connection
    /// holds the device, so the memory stays mapped until the send completes.
    /// </summary>
    private void QueueMemoryRead(UringSlot slot, in NbdRequest request)
    {
        int length = (int)request.Length;
        BeginReadReply(slot, length);
        slot.AddIovec(_memory!.Region.Pointer + (long)request.Offset, length);
        QueueReply(slot);
    }

    /// <summary>
    /// Without O_DIRECT the ring takes any read or write. With it, only aligned ones, and a write only while no
    /// read-modify-write holds the device's gate; the rest go to the executor's bounce-buffer path.
    /// </summary>
    private bool RingCanTake(UringSlot slot, in NbdRequest request)
    {
        if (_direct is null || request.Command == NbdCommand.Flush)
        {
            return true;
        }
        if (((request.Offset | request.Length) & (ulong)(_direct.DirectAlignment - 1)) != 0)
        {
            return false;
        }
        if (request.Command == NbdCommand.Write)
        {
            slot.HoldsWriteGate = _direct.WriteGate.TryEnterShared();
            return slot.HoldsWriteGate;
        }
        return true;
    }

    private void ReleaseWriteGate(UringSlot slot)
    {
        if (slot.HoldsWriteGate)
        {
            slot.HoldsWriteGate = false;
            _direct!.WriteGate.ExitShared();
        }
    }

    private void StartOnFile(UringSlot slot, in NbdRequest request)
    {
        if (request.Command == NbdCommand.Flush)
        {
            SubmitFsync(slot);
            return;
        }
        if (request.Length == 0)
        {
            if (request.Command == NbdCommand.Read)
            {
                QueueFileRead(slot);
            }
            else if ((request.Flags & NbdCommandFlags.Fua) != 0)
            {
                SubmitFsync(slot);
            }
            else
            {
                QueueSuccess(slot);
            }
            return;
        }
        if (request.Command == NbdCommand.Read)
        {
            if (TryQueueMappedRead(slot))
            {
                return;
            }
            slot.Data = _reactor.Buffers.Rent((int)request.Length);
            if (TryStartLinkedRead(slot))
            {
                return;
            }
        }
        else if (TryWriteInline(slot))
        {
            return;
        }
        SubmitDeviceIo(slot);
    }

    private Sqe* SubmitDeviceIo(UringSlot slot)
    {
        NbdRequest request = slot.Request;
        bool read = request.Command == NbdCommand.Read;
        Sqe* sqe = _reactor.GetSqe();
        if (_reactor.FixedBuffers && _reactor.Buffers.InSlab(slot.Data))
        {
            // The slab is fixed buffer 0: the kernel skips pinning and mapping the pages per request.
            sqe->Opcode = read ? OpReadFixed : OpWriteFixed;
            sqe->BufIndex = 0;
        }
        else
        {
            sqe->Opcode = read ? OpRead : OpWrite;
        }
        sqe->Fd = _ringDeviceFd;
        sqe->Flags = _fixedFileFlag;
        sqe->Address = (ulong)(slot.Data.Pointer + slot.Progress);
        sqe->Length = (uint)((int)request.Length - slot.Progress);
        sqe->Offset = request.Offset + (ulong)slot.Progress;
        if (!read && (request.Flags & NbdCommandFlags.Fua) != 0)
        {
            sqe->OpFlags = RwfDsync;
        }
        sqe->UserData = Tag(read ? OpKind.DeviceRead : OpKind.DeviceWrite, slot.Index);
        _pendingOps++;
        return sqe;
    }

    private void SubmitFsync(UringSlot slot)
    {
        // Issued after the writes it must cover have completed (their replies were already queued), so it covers them.
        Sqe* sqe = _reactor.GetSqe();
        sqe->Opcode = OpFsync;
        sqe->Fd = _ringDeviceFd;
        sqe->Flags = _fixedFileFlag;
        sqe->OpFlags = FsyncDataSync;
        sqe->UserData = Tag(OpKind.DeviceFsync, slot.Index);
        _pendingOps++;
    }

    private void OnDeviceCompletion(OpKind kind, UringSlot slot, int result)
    {
        if (result < 0)
        {
            ReleaseWriteGate(slot);
            QueueError(slot, BlockDeviceException.FromErrno(-result), "device I/O failed");
            return;
        }
        if (kind == OpKind.DeviceFsync)
        {
            QueueSuccess(slot);
            return;
        }
        int length = (int)slot.Request.Length;
        if (result == 0 && kind == OpKind.DeviceRead)
        {
            // Past the end of a file that shrank: the rest reads as zeroes.
            new Span<byte>(slot.Data.Pointer + slot.Progress, length - slot.Progress).Clear();
            result = length - slot.Progress;
        }
        slot.Progress += result;
        if (slot.Progress < length)
        {
            _ = SubmitDeviceIo(slot);
            return;
        }
        if (kind == OpKind.DeviceRead)
        {
            QueueFileRead(slot);
        }
        else
        {
            ReleaseWriteGate(slot);
            QueueSuccess(slot);
        }
    }

    /// <summary>Starts a READ reply: its header (whatever the reply style) as the slot's first iovec; the data iovecs follow.</summary>
    private void BeginReadReply(UringSlot slot, int length)
    {
        int start = ReplyEncoder.WriteReadHeader(slot.HeaderSpan[..ReplyEncoder.Headroom], _context, slot.Request, length);
        slot.IovCount = 0;
        slot.ReplyRemaining = 0;
        slot.AddIovec(slot.Header + start, ReplyEncoder.Headroom - start);
    }

    /// <summary>The header in the slot, the data from the buffer the device read into: two iovecs, no copy.</summary>
    private void QueueFileRead(UringSlot slot)
    {
        int length = (int)slot.Request.Length;
        BeginReadReply(slot, length);
        if (length > 0)
        {
            slot.AddIovec(slot.Data.Pointer, length);
        }
        QueueReply(slot);
    }

    private void RunOnExecutor(UringSlot slot)
    {
        RequestContext rc = slot.Managed ??= new RequestContext();
        rc.Request = slot.Request;
        int length = (int)Math.Min(slot.Request.Length, int.MaxValue);
        if (slot.Request.Command == NbdCommand.Write && length > 0)
        {
            rc.RentBuffer(length);
            new ReadOnlySpan<byte>(slot.Data.Pointer, length).CopyTo(rc.Buffer);
        }
        else if (slot.Request.Command == NbdCommand.Read)
        {
            rc.RentBuffer(ReplyEncoder.Headroom + length);
        }
        ValueTask<ReadOnlyMemory<byte>> pending = _executor.ExecuteAsync(rc);
        if (pending.IsCompletedSuccessfully)
        {
            QueueExecutorReply(slot, pending.Result);
            return;
        }
        _pendingOps++;
        _ = OffReactorCompletion.HandBackAsync(_reactor, slot, pending);
    }

    /// <summary>Back on the reactor after <see cref="OffReactorCompletion.HandBackAsync"/>.</summary>
    public void OnExecutorDone(UringSlot slot)
    {
        _pendingOps--;
        QueueExecutorReply(slot, slot.ExecutorReply);
        MaybeClose();
    }

    private void QueueExecutorReply(UringSlot slot, ReadOnlyMemory<byte> reply)
    {
        // The executor's buffers are managed arrays: pin them for as long as the kernel may read them.
        slot.Outcome = slot.Managed!.Outcome;
        slot.ReplyPin = reply.Pin();
        slot.IovCount = 0;
        slot.ReplyRemaining = 0;
        slot.AddIovec((byte*)slot.ReplyPin.Pointer, reply.Length);
        QueueReply(slot);
    }
}
