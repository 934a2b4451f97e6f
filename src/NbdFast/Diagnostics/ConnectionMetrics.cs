using System.Diagnostics;
using NbdFast.Protocol;

namespace NbdFast.Diagnostics;

/// <summary>
/// Records one connection's metrics on <see cref="NbdMetrics"/>. Both transports call the same four methods at
/// the same points of a request's life, so they count identically:
/// <list type="number">
/// <item><see cref="RequestReceived()"/> when a header has been parsed (returns the timestamp to keep);</item>
/// <item><see cref="RequestStarted"/> when the request is handed to execution (it is then in flight);</item>
/// <item><see cref="RequestFinished"/> when its reply has been handed to the socket, or it was dropped.</item>
/// </list>
/// Nothing here allocates: tags are a few <see cref="KeyValuePair{TKey,TValue}"/> on the stack whose values are
/// cached strings. With no listener, a request costs the <see cref="NbdMetrics.RequestsObserved"/> check.
/// </summary>
internal sealed class ConnectionMetrics(string exportName)
{
    private static readonly string[] s_commandNames =
        ["read", "write", "disconnect", "flush", "trim", "cache", "write_zeroes", "block_status", "resize"];

    private readonly KeyValuePair<string, object?> _export = new(NbdMetrics.ExportTag, exportName);
    private bool _openRecorded;
    private long _bytesRead;
    private long _bytesWritten;
    private long _budgetStalls;

    public string ExportName { get; } = exportName;

    /// <summary>Payload bytes of the connection's successful reads so far (for its log line; counted with or without a listener).</summary>
    public long BytesRead => Volatile.Read(ref _bytesRead);

    /// <summary>Payload bytes of the connection's successful writes so far.</summary>
    public long BytesWritten => Volatile.Read(ref _bytesWritten);

    /// <summary>How often reading stopped because the in-flight request or byte budget was spent.</summary>
    public long BudgetStalls => Volatile.Read(ref _budgetStalls);

    /// <summary>Reading stopped at the in-flight budget (back-pressure; counted, and reported when the connection ends).</summary>
    public void NoteBudgetStall() => Interlocked.Increment(ref _budgetStalls);

    /// <summary>The connection entered the transmission phase.</summary>
    public void ConnectionOpened()
    {
        NbdMetrics.Connections.Add(1, _export);
        // Only undone if it was done: a listener that subscribes later must not see the count go negative.
        if (NbdMetrics.ActiveConnections.Enabled)
        {
            _openRecorded = true;
            NbdMetrics.ActiveConnections.Add(1, _export);
        }
    }

    /// <summary>The connection's transmission phase ended.</summary>
    public void ConnectionClosed()
    {
        if (_openRecorded)
        {
            _openRecorded = false;
            NbdMetrics.ActiveConnections.Add(-1, _export);
        }
    }

    /// <summary>A request header was parsed. Returns its timestamp, or 0 when nobody listens (then the request is not measured).</summary>
    public long RequestReceived() => RequestReceived(NbdMetrics.RequestsObserved);

    /// <summary>As <see cref="RequestReceived()"/>, with <see cref="NbdMetrics.RequestsObserved"/> read by the caller (once per batch of requests).</summary>
    public static long RequestReceived(bool observed) => observed ? Stopwatch.GetTimestamp() : 0;

    /// <summary>The request was handed to execution. True when it was counted in flight (pass that to <see cref="RequestFinished"/>).</summary>
    public bool RequestStarted(long received)
    {
        if (received == 0 || !NbdMetrics.ActiveRequests.Enabled)
        {
            return false;
        }
        NbdMetrics.ActiveRequests.Add(1, _export);
        return true;
    }

    /// <summary>
    /// The request is over: its reply was handed to the socket (<paramref name="answered"/>) or it was dropped
    /// (the client went away, its payload was cut short). Only answered requests are counted.
    /// </summary>
    public void RequestFinished(in NbdRequest request, NbdError outcome, long received, bool started, bool answered)
    {
        if (answered && outcome == NbdError.None)
        {
            // Replies of one connection complete on several threads on the stream transport.
            if (request.Command == NbdCommand.Read)
            {
                Interlocked.Add(ref _bytesRead, (long)request.Length);
            }
            else if (request.Command == NbdCommand.Write)
            {
                Interlocked.Add(ref _bytesWritten, (long)request.Length);
            }
        }
        if (received == 0)
        {
            return;
        }
        if (started)
        {
            NbdMetrics.ActiveRequests.Add(-1, _export);
        }
        if (answered)
        {
            RecordAnswer(request, outcome, received);
        }
    }

    private void RecordAnswer(in NbdRequest request, NbdError outcome, long received)
    {
        var command = new KeyValuePair<string, object?>(NbdMetrics.CommandTag, CommandName(request.Command));
        NbdMetrics.Requests.Add(1, command, _export);
        NbdMetrics.RequestDuration.Record(Stopwatch.GetElapsedTime(received).TotalSeconds, command, _export);
        if (outcome != NbdError.None)
        {
            NbdMetrics.Errors.Add(1, new KeyValuePair<string, object?>(NbdMetrics.ErrorTag, ErrorName(outcome)), command, _export);
        }
        else if (request.Command is NbdCommand.Read or NbdCommand.Write && request.Length > 0)
        {
            NbdMetrics.Io.Add((long)request.Length, command, _export);
        }
    }

    /// <summary>The tag value of a command: lower case, words joined by underscores.</summary>
    public static string CommandName(NbdCommand command) =>
        (uint)command < (uint)s_commandNames.Length ? s_commandNames[(int)command] : "unknown";

    /// <summary>The tag value of an NBD error: its errno-style name.</summary>
    public static string ErrorName(NbdError error) => error switch
    {
        NbdError.Perm => "EPERM",
        NbdError.IO => "EIO",
        NbdError.NoMemory => "ENOMEM",
        NbdError.Invalid => "EINVAL",
        NbdError.NoSpace => "ENOSPC",
        NbdError.Overflow => "EOVERFLOW",
        NbdError.NotSupported => "ENOTSUP",
        NbdError.Shutdown => "ESHUTDOWN",
        NbdError.None => "none",
        _ => "unknown",
    };
}
