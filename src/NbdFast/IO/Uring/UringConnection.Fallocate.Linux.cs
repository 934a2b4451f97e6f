using NbdFast.Protocol;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// TRIM and WRITE_ZEROES on regular files, on the ring: fallocate PUNCH_HOLE and ZERO_RANGE (both keeping
/// the size). When the filesystem cannot, a trim simply keeps the data (it is advisory) and zeroing falls
/// back to the executor, which writes zeroes, or answers ENOTSUP to a FAST_ZERO request.
/// </summary>
internal sealed unsafe partial class UringConnection
{
    private const uint FallocKeepSize = 0x01;
    private const uint FallocPunchHole = 0x02;
    private const uint FallocZeroRange = 0x10;

    private void SubmitFallocate(UringSlot slot, in NbdRequest request)
    {
        Sqe* sqe = _reactor.GetSqe();
        sqe->Opcode = OpFallocate;
        sqe->Fd = _ringDeviceFd;
        sqe->Flags = _fixedFileFlag;
        sqe->Offset = request.Offset;
        sqe->Address = request.Length;
        sqe->Length = (request.Command == NbdCommand.Trim ? FallocPunchHole : FallocZeroRange) | FallocKeepSize;
        sqe->UserData = Tag(OpKind.DeviceFallocate, slot.Index);
        _pendingOps++;
    }

    private void OnFallocated(UringSlot slot, int result)
    {
        bool trim = slot.Request.Command == NbdCommand.Trim;
        if (result is -95 or -22 && !trim)
        {
            RunOnExecutor(slot);
            return;
        }
        if (result < 0 && !(trim && result is -95 or -22))
        {
            QueueError(slot, Devices.BlockDeviceException.FromErrno(-result), "fallocate failed");
            return;
        }
        if ((slot.Request.Flags & NbdCommandFlags.Fua) != 0)
        {
            SubmitFsync(slot);
            return;
        }
        QueueSuccess(slot);
    }
}
