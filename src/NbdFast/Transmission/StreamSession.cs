using System.Runtime.CompilerServices;
using Microsoft.Extensions.ObjectPool;
using NbdFast.Protocol;

namespace NbdFast.Transmission;

/// <summary>
/// The transmission phase over a <see cref="Stream"/> (the portable transport, and the one TLS uses). One
/// reader parses requests and starts them without waiting for earlier ones; each completes on its own and
/// sends its reply under a send lock, so replies leave in completion order, whole, matched by cookie.
/// </summary>
internal sealed partial class StreamSession
{
    private readonly Stream _stream;
    private readonly TransmissionContext _context;
    private readonly RequestExecutor _executor;
    private readonly InFlightBudget _budget;
    private readonly ObjectPool<RequestContext> _pool;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly byte[] _header = new byte[NbdLimits.ExtendedRequestHeaderSize];
    private readonly byte[] _scratch = new byte[Math.Max(ReplyEncoder.MaxSmallReply, 64 * 1024)];

    public StreamSession(Stream stream, TransmissionContext context)
    {
        _stream = stream;
        _context = context;
        _executor = new RequestExecutor(context);
        _budget = new InFlightBudget(context.Options.MaxInFlightRequests, context.Options.MaxInFlightBytes, context.Metrics);
        _pool = new DefaultObjectPool<RequestContext>(new DefaultPooledObjectPolicy<RequestContext>(), context.Options.MaxInFlightRequests);
    }

    /// <summary>How the session ended.</summary>
    public SessionEnd End { get; private set; }

    /// <summary>
    /// Serves requests until the client disconnects, breaks framing, stays idle too long, the session is
    /// aborted, or a graceful shutdown (<paramref name="shutdown"/>) has drained, flushed and lingered.
    /// Every request already started is finished (and answered, if the connection still works) first.
    /// </summary>
    /// <exception cref="Exception">The final flush of a graceful shutdown failed (the device's exception).</exception>
    public async Task<SessionEnd> RunAsync(CancellationToken shutdown)
    {
        StartIdleTimer();
        CancellationTokenRegistration registration = shutdown.Register(static s => ((StreamSession)s!).BeginShutdown(), this);
        try
        {
            End = await ReadLoopAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or NotSupportedException)
        {
            End = StopReason ?? SessionEnd.ClientGone;
        }
        catch
        {
            // Any other failure (e.g. from a TLS stream) still stops the session first.
            Stop(SessionEnd.ClientGone);
            throw;
        }
        finally
        {
            // Every request already started is finished (and answered, if it can be) before the connection
            // closes or the host releases the device, however the read loop ended.
            await _budget.WhenIdleAsync().ConfigureAwait(false);
            await registration.DisposeAsync().ConfigureAwait(false);
        }
        await FinishAsync().ConfigureAwait(false);
        return End;
    }

    private async Task<SessionEnd> ReadLoopAsync(CancellationToken cancellationToken)
    {
        int headerSize = RequestHeaderCodec.HeaderSize(_context.ExtendedHeaders);
        while (true)
        {
            int got = await _stream.ReadAtLeastAsync(_header.AsMemory(0, headerSize), headerSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (got == 0)
            {
                return SessionEnd.ClientGone;
            }
            if (got < headerSize || !RequestHeaderCodec.TryRead(_header, _context.ExtendedHeaders, out NbdRequest request))
            {
                return SessionEnd.FramingLost;
            }
            if (request.Command == NbdCommand.Disconnect)
            {
                return SessionEnd.Disconnect;
            }
            NoteActivity();
            long received = _context.Metrics.RequestReceived();
            if (!_budget.TryBeginRequest())
            {
                // Shutting down: consume what the request carries, then ESHUTDOWN.
                ulong payload = _context.PayloadLength(request);
                if (payload > (ulong)_context.Options.MaxDrainedPayload)
                {
                    return SessionEnd.FramingLost;
                }
                await DrainAsync((long)payload, cancellationToken).ConfigureAwait(false);
                await SendInlineErrorAsync(request, NbdError.Shutdown, ShutdownMessage, received, cancellationToken).ConfigureAwait(false);
                continue;
            }
            try
            {
                if (await HandleRequestAsync(request, received, cancellationToken).ConfigureAwait(false) is SessionEnd end)
                {
                    return end;
                }
            }
            finally
            {
                _budget.EndRequest();
            }
        }
    }

    /// <summary>Validates and starts one request, or answers it inline. Returns how the session ends, or null to go on.</summary>
    private async ValueTask<SessionEnd?> HandleRequestAsync(NbdRequest request, long received, CancellationToken cancellationToken)
    {
        ulong payload = _context.PayloadLength(request);
        if (payload > _context.MaxPayload)
        {
            if (payload > (ulong)_context.Options.MaxDrainedPayload)
            {
                return SessionEnd.FramingLost;
            }
            await DrainAsync((long)payload, cancellationToken).ConfigureAwait(false);
            await SendInlineErrorAsync(request, request.Command == NbdCommand.Write ? NbdError.Overflow : NbdError.Invalid, "payload longer than the maximum", received, cancellationToken).ConfigureAwait(false);
            return null;
        }

        Verdict verdict;
        if (payload != 0 && request.Command == NbdCommand.BlockStatus && _context.Advertises(NbdTransmissionFlags.BlockStatusPayload))
        {
            (verdict, request) = await ReadBlockStatusPayloadAsync(request, (int)payload, cancellationToken).ConfigureAwait(false);
            payload = 0;
        }
        else
        {
            verdict = payload != 0 && request.Command != NbdCommand.Write
                ? new Verdict(NbdError.Invalid, Message: "this command takes no payload")
                : RequestValidator.Validate(request, _context);
        }
        if (!verdict.IsOk)
        {
            if (verdict.EndSession)
            {
                await SendInlineErrorAsync(request, verdict.Error, verdict.Message, received, cancellationToken).ConfigureAwait(false);
                return SessionEnd.ReadOnlyViolation;
            }
            await DrainAsync((long)payload, cancellationToken).ConfigureAwait(false);
            await SendInlineErrorAsync(request, verdict.Error, verdict.Message, received, cancellationToken).ConfigureAwait(false);
            return null;
        }

        return await StartAsync(request, (int)payload, received, cancellationToken).ConfigureAwait(false) ? null : SessionEnd.FramingLost;
    }

    /// <summary>Acquires budget, receives any payload, and starts the request. False when the payload was cut short.</summary>
    private async ValueTask<bool> StartAsync(NbdRequest request, int payload, long received, CancellationToken cancellationToken)
    {
        long cost = request.Command switch
        {
            NbdCommand.Read => (long)request.Length,
            NbdCommand.Write => payload,
            _ => 0,
        };
        await _budget.AcquireAsync(cost, cancellationToken).ConfigureAwait(false);
        RequestContext rc = _pool.Get();
        rc.Request = request;
        rc.Cost = cost;
        rc.Received = received;
        try
        {
            if (request.Command == NbdCommand.Write && payload > 0)
            {
                rc.RentBuffer(payload);
                int got = await _stream.ReadAtLeastAsync(rc.Buffer.AsMemory(0, payload), payload, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                if (got < payload)
                {
                    // A truncated write is never applied.
                    Complete(rc, answered: false);
                    return false;
                }
            }
            else if (request.Command == NbdCommand.Read)
            {
                rc.RentBuffer(ReplyEncoder.Headroom + (int)request.Length);
            }
        }
        catch
        {
            Complete(rc, answered: false);
            throw;
        }
        rc.Started = _context.Metrics.RequestStarted(received);
        _ = ExecuteAsync(rc);
        return true;
    }

    /// <summary>
    /// The payload form of BLOCK_STATUS (extended headers): an effect length and the context ids to report.
    /// Returns the request rewritten to its effect length, validated; the payload is always consumed.
    /// </summary>
    private async ValueTask<(Verdict, NbdRequest)> ReadBlockStatusPayloadAsync(NbdRequest request, int payload, CancellationToken cancellationToken)
    {
        if (payload > _scratch.Length)
        {
            await DrainAsync(payload, cancellationToken).ConfigureAwait(false);
            return (new Verdict(NbdError.Invalid, Message: "block status payload too long"), request);
        }
        await _stream.ReadExactlyAsync(_scratch.AsMemory(0, payload), cancellationToken).ConfigureAwait(false);
        if (!BlockStatusPayload.TryParse(_scratch.AsSpan(0, payload), out ulong effectLength))
        {
            return (new Verdict(NbdError.Invalid, Message: "block status payload names unknown or duplicate contexts"), request);
        }
        request = request with { Length = effectLength, Flags = request.Flags & ~NbdCommandFlags.PayloadLen };
        return (RequestValidator.Validate(request, _context), request);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ExecuteAsync(RequestContext rc)
    {
        bool answered = false;
        try
        {
            ReadOnlyMemory<byte> reply = await _executor.ExecuteAsync(rc).ConfigureAwait(false);
            answered = await SendAsync(reply).ConfigureAwait(false);
        }
        finally
        {
            Complete(rc, answered);
        }
    }


    private async ValueTask DrainAsync(long length, CancellationToken cancellationToken)
    {
        while (length > 0)
        {
            int chunk = (int)Math.Min(length, _scratch.Length);
            await _stream.ReadExactlyAsync(_scratch.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false);
            length -= chunk;
        }
    }

    private async ValueTask SendInlineErrorAsync(NbdRequest request, NbdError error, string? message, long received, CancellationToken cancellationToken)
    {
        int length = ReplyEncoder.WriteError(_scratch, _context, request, error, message);
        bool answered = await SendAsync(_scratch.AsMemory(0, length)).ConfigureAwait(false);
        _context.Metrics.RequestFinished(request, error, received, started: false, answered);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Sends one whole reply; replies never interleave. A failed send marks the connection broken. The stop
    /// token only fires when no request is in flight (idle, linger over) or the connection is gone, so it
    /// never cuts a reply that is owed. True when the reply was handed to the stream.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> SendAsync(ReadOnlyMemory<byte> reply)
    {
        await _sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_stop.IsCancellationRequested)
            {
                await _stream.WriteAsync(reply, _stop.Token).ConfigureAwait(false);
                return true;
            }
            return false;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or OperationCanceledException)
        {
            Stop(SessionEnd.ClientGone);
            return false;
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private void Complete(RequestContext rc, bool answered)
    {
        _context.Metrics.RequestFinished(rc.Request, rc.Outcome, rc.Received, rc.Started, answered);
        long cost = rc.Cost;
        rc.Reset();
        _pool.Return(rc);
        NoteActivity();
        _budget.Release(cost);
    }
}

/// <summary>Why a transmission session ended; <see cref="NbdSessionEnd"/> is its public mirror (same members, same order).</summary>
internal enum SessionEnd
{
    /// <summary>NBD_CMD_DISC.</summary>
    Disconnect,
    /// <summary>The client closed the connection or stopped accepting replies.</summary>
    ClientGone,
    /// <summary>Bad magic, truncated header or payload, or an undrainable payload.</summary>
    FramingLost,
    /// <summary>A write-type request on a read-only export, with the session-ending policy.</summary>
    ReadOnlyViolation,
    /// <summary>A graceful shutdown drained and flushed the session, and the linger ran out.</summary>
    Shutdown,
    /// <summary>No request arrived for <see cref="ServeOptions.IdleTimeout"/> while nothing was in flight.</summary>
    IdleTimeout,
    /// <summary>The host closed the connection while it was being served (hard stop).</summary>
    Aborted,
}
