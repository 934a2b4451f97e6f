using NbdFast.Protocol;
using NbdFast.Transmission;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// Sending: replies queue per connection and leave in one SENDMSG whose iovecs point at the reply headers and
/// the data buffers. Only one send is in flight, so bytes of different replies never interleave; a short
/// send resumes from where it stopped.
/// </summary>
internal sealed unsafe partial class UringConnection
{
    private void QueueSuccess(UringSlot slot)
    {
        slot.SetSmallReply(ReplyEncoder.WriteSuccess(slot.HeaderSpan, _context, slot.Request));
        QueueReply(slot);
    }

    private void QueueError(UringSlot slot, NbdError error, string? message, bool queue = true)
    {
        slot.Outcome = error;
        slot.SetSmallReply(ReplyEncoder.WriteError(slot.HeaderSpan, _context, slot.Request, error, message));
        if (queue)
        {
            QueueReply(slot);
        }
    }

    private void QueueReply(UringSlot slot)
    {
        if (_broken)
        {
            ReleaseSlot(slot);
            return;
        }
        _sendQueue.PushBack(slot.Index);
        if (!_sendScheduled && !_sendPosted)
        {
            _sendScheduled = true;
            _reactor.ScheduleSend(this);
        }
    }

    /// <summary>Sends every queued reply that fits one SENDMSG; runs once per reactor loop turn.</summary>
    public void FlushSends()
    {
        _sendScheduled = false;
        if (_sendPosted || _sendQueue.Count == 0 || _closed)
        {
            return;
        }
        int iovecs = 0;
        int slots = 0;
        while (slots < _sendQueue.Count)
        {
            UringSlot slot = _slots[_sendQueue.At(slots)];
            if (iovecs + slot.IovCount > MaxSendIovecs && slots > 0)
            {
                break;
            }
            int take = Math.Min(slot.IovCount, MaxSendIovecs - iovecs);
            Buffer.MemoryCopy(slot.Iov, _sendIovecs + iovecs, (MaxSendIovecs - iovecs) * sizeof(IoVec), take * sizeof(IoVec));
            iovecs += take;
            slots++;
            if (take < slot.IovCount)
            {
                break;
            }
        }
        _sendSlots = slots;
        *_message = default;
        _message->Iov = _sendIovecs;
        _message->IovLength = (nuint)iovecs;
        Sqe* sqe = _reactor.GetSqe();
        sqe->Opcode = OpSendMsg;
        sqe->Fd = _ringFd;
        sqe->Flags = _fixedFileFlag;
        sqe->Address = (ulong)_message;
        sqe->OpFlags = MsgNoSignal;
        sqe->UserData = Tag(OpKind.Send);
        _sendPosted = true;
        _pendingOps++;
    }

    private void OnSent(int result)
    {
        _sendPosted = false;
        if (result == -EFault && TryRereadMappedReplies())
        {
            // A mapped page went away under the send (see UringConnection.MappedRead): nothing was sent.
            result = 0;
        }
        if (result < 0)
        {
            AbandonReplies();
            return;
        }
        long sent = result;
        for (int i = 0; i < _sendSlots && _sendQueue.Count > 0; i++)
        {
            UringSlot slot = _slots[_sendQueue.At(0)];
            if (sent >= slot.ReplyRemaining)
            {
                sent -= slot.ReplyRemaining;
                ReleaseSlot(DequeueSent(), answered: true);
                continue;
            }
            slot.Advance(sent);
            break;
        }
        if (_sendQueue.Count > 0 && !_sendScheduled)
        {
            _sendScheduled = true;
            _reactor.ScheduleSend(this);
        }
    }

    /// <summary>A send failed: the client is gone and nothing more can be delivered.</summary>
    private void AbandonReplies()
    {
        _broken = true;
        // Stop reading first: releasing a slot would otherwise resume parsing requests nobody will hear about.
        StopReading(SessionEnd.ClientGone);
        // A receive may still be posted: with the socket shut down it completes, and the connection can close
        // instead of waiting for the peer (still there when the send failed on our side, as after an EFAULT).
        ShutdownSocket();
        while (_sendQueue.Count > 0)
        {
            ReleaseSlot(DequeueSent());
        }
    }

    private UringSlot DequeueSent() => _slots[_sendQueue.PopFront()];

    /// <summary>
    /// The request is answered (its whole reply went to the socket) or abandoned: it is counted, its memory and
    /// budget return, and reading may resume.
    /// </summary>
    private void ReleaseSlot(UringSlot slot, bool answered = false)
    {
        if (slot.ShutdownReply)
        {
            _shutdownReplies--;
        }
        NoteActivity();
        _context.Metrics.RequestFinished(slot.Request, slot.Outcome, slot.Received, slot.Started, answered);
        slot.Reset(_reactor.Buffers);
        _inFlight--;
        _reactor.RequestsInFlight--;
        _inFlightBytes -= slot.Cost;
        _freeSlots.Push(slot.Index);
        if (_pausedForBudget && !_readStopped)
        {
            _pausedForBudget = false;
            ProcessInput();
        }
    }
}
