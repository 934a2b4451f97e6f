using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NbdFast.Devices;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// WRITE payloads for a memory export are received straight into the device's chunks: the slot's iovecs
/// point at the chunk ranges the write covers and one RECVMSG (MSG_WAITALL) fills them, so the bytes are
/// copied once, by the kernel, instead of socket → buffer → chunk. Only the part that arrived together with
/// the header is copied from the receive buffer.
/// A payload cut short by a dropped client leaves the range partly written, like a torn write on a disk;
/// it was never acknowledged, and overlapping requests in flight have no defined order anyway.
/// </summary>
internal sealed unsafe partial class UringConnection
{
    /// <summary>One iovec per chunk touched, within the kernel's limit of 1024 per message (larger payloads bounce).</summary>
    private const ulong MaxInPlacePayload = 1023UL * MemoryDevice.ChunkSize;

    /// <summary>Starts receiving a memory WRITE into place. False when reading must pause for the rest of the payload.</summary>
    private bool ReceiveIntoMemory(UringSlot slot, int payload)
    {
        slot.InPlace = true;
        slot.IovCount = 0;
        slot.ReplyRemaining = 0;
        long offset = (long)slot.Request.Offset;
        long end = offset + payload;
        while (offset < end)
        {
            int within = (int)(offset & (MemoryDevice.ChunkSize - 1));
            int count = (int)Math.Min(end - offset, MemoryDevice.ChunkSize - within);
            // Held by the slot: a trim may drop the device's reference while the kernel still writes here.
            byte[] chunk = _memory!.CommitChunkAt(offset);
            slot.KeepAlive.Add(chunk);
            slot.AddIovec((byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(chunk)) + within, count);
            offset += count;
        }
        int buffered = (int)Math.Min(payload, _receiveEnd - _receiveStart);
        CopyIntoIovecs(slot, _receive + _receiveStart, buffered);
        _receiveStart += buffered;
        slot.Progress = buffered;
        slot.Advance(buffered);
        if (buffered == payload)
        {
            OnPayloadComplete(slot);
            return true;
        }
        _payloadSlot = slot;
        PostInPlaceReceive(slot);
        return false;
    }

    private static void CopyIntoIovecs(UringSlot slot, byte* source, int length)
    {
        for (int i = 0; length > 0; i++)
        {
            int count = (int)Math.Min((ulong)length, (ulong)slot.Iov[i].Length);
            Buffer.MemoryCopy(source, slot.Iov[i].Base, count, count);
            source += count;
            length -= count;
        }
    }

    /// <summary>Receives the rest of the payload into the iovecs still outstanding (short receives advance them).</summary>
    private void PostInPlaceReceive(UringSlot slot)
    {
        *slot.Message = default;
        slot.Message->Iov = slot.Iov;
        slot.Message->IovLength = (nuint)slot.IovCount;
        Sqe* sqe = _reactor.GetSqe();
        sqe->Opcode = OpRecvMsg;
        sqe->Fd = _fd;
        sqe->Address = (ulong)slot.Message;
        sqe->Length = 1;
        sqe->OpFlags = MsgWaitAll;
        sqe->UserData = Tag(OpKind.ReceivePayload, slot.Index);
        _receivePosted = true;
        _pendingOps++;
    }
}
