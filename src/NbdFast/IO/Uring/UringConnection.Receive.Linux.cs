using NbdFast.Diagnostics;
using NbdFast.Protocol;
using NbdFast.Transmission;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>Receiving: one receive in flight, every whole header in the buffer parsed, payloads received into their own buffers.</summary>
internal sealed unsafe partial class UringConnection
{
    private void PostReceive()
    {
        if (_readStopped || _receivePosted || _payloadSlot is not null || _pausedForBudget)
        {
            return;
        }
        if (_receiveStart == _receiveEnd)
        {
            _receiveStart = _receiveEnd = 0;
        }
        else if (_receiveEnd == ReceiveCapacity || _receiveStart > ReceiveCapacity / 2)
        {
            // Keep the partial header and make room behind it.
            int pending = _receiveEnd - _receiveStart;
            Buffer.MemoryCopy(_receive + _receiveStart, _receive, ReceiveCapacity, pending);
            _receiveStart = 0;
            _receiveEnd = pending;
        }
        Sqe* sqe = _reactor.GetSqe();
        sqe->Opcode = OpRecv;
        sqe->Fd = _ringFd;
        sqe->Flags = _fixedFileFlag;
        sqe->Address = (ulong)(_receive + _receiveEnd);
        sqe->Length = (uint)(ReceiveCapacity - _receiveEnd);
        sqe->UserData = Tag(OpKind.Receive);
        _receivePosted = true;
        _pendingOps++;
    }

    private void OnReceive(int result)
    {
        _receivePosted = false;
        if (result <= 0)
        {
            // 0: the client closed (or the host asked us to stop); negative: the socket failed.
            StopReading(SessionEnd.ClientGone);
            return;
        }
        _receiveEnd += result;
        NoteActivity();
        ProcessInput();
    }

    /// <summary>Parses and starts every request whose header is in the buffer, within the in-flight budget.</summary>
    private void ProcessInput()
    {
        int headerSize = RequestHeaderCodec.HeaderSize(_context.ExtendedHeaders);
        while (!_readStopped && _payloadSlot is null)
        {
            if (_drainRemaining > 0 && !ConsumeDrain())
            {
                break;
            }
            int available = _receiveEnd - _receiveStart;
            if (available < headerSize)
            {
                break;
            }
            var header = new ReadOnlySpan<byte>(_receive + _receiveStart, headerSize);
            if (!RequestHeaderCodec.TryRead(header, _context.ExtendedHeaders, out NbdRequest request))
            {
                StopReading(SessionEnd.FramingLost);
                break;
            }
            if (request.Command == NbdCommand.Disconnect)
            {
                _receiveStart += headerSize;
                StopReading(SessionEnd.Disconnect);
                break;
            }
            // The flag is read per header, so a request that arrives after the host's cancel returned is refused.
            if (_draining || Volatile.Read(ref _stopRequested) != 0)
            {
                _draining = true;
                if (!RefuseForShutdown(request, headerSize))
                {
                    break;
                }
                continue;
            }
            ulong payload = _context.PayloadLength(request);
            long cost = request.Command == NbdCommand.Read ? (long)Math.Min(request.Length, _context.MaxPayload) : (long)Math.Min(payload, _context.MaxPayload);
            if (!TryReserve(cost, out UringSlot? slot))
            {
                _context.Metrics.NoteBudgetStall();
                _pausedForBudget = true;
                break;
            }
            _receiveStart += headerSize;
            _reactor.RequestsThisTurn++;
            slot.Begin(request, cost, ConnectionMetrics.RequestReceived(_reactor.RequestsObserved));
            if (!AcceptRequest(slot, payload))
            {
                break;
            }
        }
        EndInlineBatch();
        PostReceive();
    }

    /// <summary>Handles a parsed header. False when reading must pause (a payload is being received) or stop.</summary>
    private bool AcceptRequest(UringSlot slot, ulong payload)
    {
        NbdRequest request = slot.Request;
        if (payload > _context.MaxPayload)
        {
            if (payload > (ulong)_context.Options.MaxDrainedPayload)
            {
                ReleaseSlot(slot);
                StopReading(SessionEnd.FramingLost);
                return false;
            }
            QueueError(slot, request.Command == NbdCommand.Write ? NbdError.Overflow : NbdError.Invalid, "payload longer than the maximum", queue: false);
            _drainReply = slot;
            _drainRemaining = (long)payload;
            return ConsumeDrain();
        }
        bool payloadForm = payload != 0 && request.Command == NbdCommand.BlockStatus && _context.Advertises(NbdTransmissionFlags.BlockStatusPayload);
        if (payload != 0 && request.Command != NbdCommand.Write && !payloadForm)
        {
            QueueError(slot, NbdError.Invalid, "this command takes no payload", queue: false);
            _drainReply = slot;
            _drainRemaining = (long)payload;
            return ConsumeDrain();
        }
        if (!payloadForm)
        {
            Verdict verdict = RequestValidator.Validate(request, _context);
            if (!verdict.IsOk)
            {
                QueueError(slot, verdict.Error, verdict.Message, queue: payload == 0);
                if (verdict.EndSession)
                {
                    if (payload != 0)
                    {
                        QueueReply(slot);
                    }
                    StopReading(SessionEnd.ReadOnlyViolation);
                    return false;
                }
                if (payload != 0)
                {
                    _drainReply = slot;
                    _drainRemaining = (long)payload;
                    return ConsumeDrain();
                }
                return true;
            }
        }
        if (payload == 0)
        {
            Start(slot);
            return true;
        }
        if (TryWriteFromReceiveBuffer(slot))
        {
            return true;
        }
        // Take what already arrived, then receive the rest straight into the request's own buffer.
        slot.Data = _reactor.Buffers.Rent((int)payload);
        int buffered = (int)Math.Min(payload, (ulong)(_receiveEnd - _receiveStart));
        Buffer.MemoryCopy(_receive + _receiveStart, slot.Data.Pointer, slot.Data.Capacity, buffered);
        _receiveStart += buffered;
        slot.Progress = buffered;
        if (buffered == (int)payload)
        {
            OnPayloadComplete(slot);
            return true;
        }
        _payloadSlot = slot;
        PostPayloadReceive(slot);
        return false;
    }

    private void PostPayloadReceive(UringSlot slot)
    {
        int payload = PayloadBytes(slot);
        Sqe* sqe = _reactor.GetSqe();
        sqe->Opcode = OpRecv;
        sqe->Fd = _ringFd;
        sqe->Flags = _fixedFileFlag;
        sqe->Address = (ulong)(slot.Data.Pointer + slot.Progress);
        sqe->Length = (uint)(payload - slot.Progress);
        sqe->OpFlags = MsgWaitAll;
        sqe->UserData = Tag(OpKind.ReceivePayload, slot.Index);
        _receivePosted = true;
        _pendingOps++;
    }

    private void OnPayload(UringSlot slot, int result)
    {
        _receivePosted = false;
        if (_payloadSlot != slot)
        {
            return;
        }
        if (_readStopped)
        {
            // Reading stopped while the kernel was still writing into this buffer: only now may it go back.
            _payloadSlot = null;
            ReleaseSlot(slot);
            return;
        }
        if (result <= 0)
        {
            StopReading(result == 0 ? SessionEnd.FramingLost : SessionEnd.ClientGone);
            return;
        }
        slot.Progress += result;
        if (slot.Progress < PayloadBytes(slot))
        {
            PostPayloadReceive(slot);
            return;
        }
        _payloadSlot = null;
        OnPayloadComplete(slot);
        ProcessInput();
    }

    private void OnPayloadComplete(UringSlot slot)
    {
        slot.Progress = 0;
        if (slot.Request.Command == NbdCommand.BlockStatus)
        {
            // The payload form: an effect length and the context ids wanted.
            var payload = new ReadOnlySpan<byte>(slot.Data.Pointer, PayloadBytes(slot));
            if (!BlockStatusPayload.TryParse(payload, out ulong effectLength))
            {
                QueueError(slot, NbdError.Invalid, "block status payload names unknown or duplicate contexts");
                return;
            }
            slot.Request = slot.Request with { Length = effectLength, Flags = slot.Request.Flags & ~NbdCommandFlags.PayloadLen };
            Verdict verdict = RequestValidator.Validate(slot.Request, _context);
            if (!verdict.IsOk)
            {
                QueueError(slot, verdict.Error, verdict.Message);
                return;
            }
        }
        Start(slot);
    }

    /// <summary>
    /// A request that arrived during shutdown: ESHUTDOWN, after consuming any payload so framing holds.
    /// False when reading must pause (no free slot, or the payload is still arriving) or stop.
    /// </summary>
    private bool RefuseForShutdown(in NbdRequest request, int headerSize)
    {
        ulong payload = _context.PayloadLength(request);
        if (payload > (ulong)_context.Options.MaxDrainedPayload)
        {
            StopReading(SessionEnd.FramingLost);
            return false;
        }
        if (!TryReserve(0, out UringSlot? slot))
        {
            _context.Metrics.NoteBudgetStall();
            _pausedForBudget = true;
            return false;
        }
        _receiveStart += headerSize;
        slot.Begin(request, 0, ConnectionMetrics.RequestReceived(_reactor.RequestsObserved));
        slot.ShutdownReply = true;
        _shutdownReplies++;
        QueueError(slot, NbdError.Shutdown, StreamSession.ShutdownMessage, queue: payload == 0);
        if (payload == 0)
        {
            return true;
        }
        _drainReply = slot;
        _drainRemaining = (long)payload;
        return ConsumeDrain();
    }

    /// <summary>Skips an unwanted payload; true once it is all consumed (its error reply is then queued).</summary>
    private bool ConsumeDrain()
    {
        long take = Math.Min(_drainRemaining, _receiveEnd - _receiveStart);
        _receiveStart += (int)take;
        _drainRemaining -= take;
        if (_drainRemaining > 0)
        {
            return false;
        }
        UringSlot reply = _drainReply!;
        _drainReply = null;
        QueueReply(reply);
        return true;
    }

    private bool TryReserve(long cost, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out UringSlot? slot)
    {
        slot = null;
        if (_freeSlots.Count == 0 || (_inFlight > 0 && _inFlightBytes + cost > _context.Options.MaxInFlightBytes))
        {
            return false;
        }
        slot = _slots[_freeSlots.Pop()];
        _inFlight++;
        _reactor.RequestsInFlight++;
        _inFlightBytes += cost;
        return true;
    }


    private static int PayloadBytes(UringSlot slot) => (int)slot.Request.Length;
}
