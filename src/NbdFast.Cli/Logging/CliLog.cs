using Microsoft.Extensions.Logging;

namespace NbdFast.Cli.Logging;

/// <summary>
/// Every message nbdfast logs, source-generated so a disabled level costs a check and nothing else.
/// Client-supplied text (export names) is escaped by the caller with <see cref="NbdFast.Negotiation.ClientText.Echo"/>.
/// </summary>
internal static partial class CliLog
{
    [LoggerMessage(1, LogLevel.Information, "serving {Exports} on {Listeners} ({Transport})")]
    public static partial void Serving(this ILogger logger, string exports, string listeners, string transport);

    [LoggerMessage(2, LogLevel.Warning, "io_uring unavailable ({Reason}); using the socket transport")]
    public static partial void UringUnavailable(this ILogger logger, string reason);

    [LoggerMessage(3, LogLevel.Information, "metrics at {Url}")]
    public static partial void MetricsListening(this ILogger logger, string url);

    [LoggerMessage(10, LogLevel.Debug, "connection {Id} from {Peer}: export '{Export}'{Tls}")]
    public static partial void ConnectionOpened(this ILogger logger, long id, string peer, string export, string tls);

    [LoggerMessage(11, LogLevel.Debug, "connection {Id} from {Peer} closed: export '{Export}', {Seconds:F1} s, {BytesRead} bytes read, {BytesWritten} bytes written")]
    public static partial void ConnectionClosed(this ILogger logger, long id, string peer, string export, double seconds, long bytesRead, long bytesWritten);

    [LoggerMessage(12, LogLevel.Debug, "connection {Id} from {Peer}: client aborted the handshake")]
    public static partial void HandshakeAborted(this ILogger logger, long id, string peer);

    [LoggerMessage(13, LogLevel.Debug, "connection {Id} from {Peer}: {Problem}")]
    public static partial void ProtocolProblem(this ILogger logger, long id, string peer, string problem);

    [LoggerMessage(14, LogLevel.Warning, "connection {Id} from {Peer} (export '{Export}') failed: {Problem}")]
    public static partial void ConnectionFailed(this ILogger logger, long id, string peer, string export, string problem);

    [LoggerMessage(15, LogLevel.Debug, "connection {Id} from {Peer}: handshake refused, server shutting down")]
    public static partial void HandshakeAtShutdown(this ILogger logger, long id, string peer);

    [LoggerMessage(20, LogLevel.Warning, "refused {Peer}: not allowed by --allow")]
    public static partial void PeerDenied(this ILogger logger, string peer);

    [LoggerMessage(21, LogLevel.Warning, "refused {Peer}: {Limit} connections already open (--max-connections)")]
    public static partial void ConnectionLimit(this ILogger logger, string peer, int limit);

    [LoggerMessage(22, LogLevel.Warning, "refused {Peer}: {Limit} clients already in the handshake (--max-handshakes)")]
    public static partial void HandshakeLimit(this ILogger logger, string peer, int limit);

    [LoggerMessage(23, LogLevel.Warning, "connection {Id} from {Peer}: closed, export '{Export}' is at its max-connections ({Limit})")]
    public static partial void ExportLimit(this ILogger logger, long id, string peer, string export, int limit);

    [LoggerMessage(28, LogLevel.Warning, "export '{Export}' is at its max-connections ({Limit}): a client asking for it is refused (NBD_REP_ERR_POLICY)")]
    public static partial void ExportFull(this ILogger logger, string export, int limit);

    [LoggerMessage(24, LogLevel.Warning, "connection {Id} from {Peer}: closed, no handshake within {Seconds} s (--handshake-timeout)")]
    public static partial void HandshakeTimeout(this ILogger logger, long id, string peer, double seconds);

    [LoggerMessage(25, LogLevel.Warning, "connection {Id} from {Peer}: closed, export '{Export}' was removed by a reload")]
    public static partial void ExportGone(this ILogger logger, long id, string peer, string export);

    [LoggerMessage(26, LogLevel.Warning, "connection {Id} from {Peer}: closed after {Seconds} s without a request (--idle-timeout)")]
    public static partial void IdleTimeout(this ILogger logger, long id, string peer, double seconds);

    [LoggerMessage(29, LogLevel.Information, "connection {Id} from {Peer}: reading paused {Stalls} times at the in-flight limit of {Requests} requests / {Bytes} bytes (--max-in-flight, --max-in-flight-bytes)")]
    public static partial void InFlightLimit(this ILogger logger, long id, string peer, long stalls, int requests, long bytes);

    [LoggerMessage(27, LogLevel.Warning, "accept failed: {Problem}")]
    public static partial void AcceptFailed(this ILogger logger, string problem);

    [LoggerMessage(30, LogLevel.Information, "reloaded {Path}: {Added} added, {Removed} removed, {Kept} unchanged")]
    public static partial void Reloaded(this ILogger logger, string path, int added, int removed, int kept);

    [LoggerMessage(31, LogLevel.Error, "reload of {Path} failed, keeping the current exports: {Problem}")]
    public static partial void ReloadFailed(this ILogger logger, string path, string problem);

    [LoggerMessage(32, LogLevel.Warning, "SIGHUP ignored: there is no --config file to re-read")]
    public static partial void NothingToReload(this ILogger logger);

    [LoggerMessage(33, LogLevel.Debug, "export '{Export}' removed; its last client has left")]
    public static partial void ExportDrained(this ILogger logger, string export);

    [LoggerMessage(40, LogLevel.Information, "shutting down: {Connections} connections to finish within {Seconds} s (a second signal exits at once)")]
    public static partial void ShuttingDown(this ILogger logger, int connections, double seconds);

    [LoggerMessage(41, LogLevel.Warning, "closing {Connections} connections still open after --shutdown-timeout")]
    public static partial void ShutdownTimeout(this ILogger logger, int connections);

    [LoggerMessage(42, LogLevel.Warning, "second signal: exiting at once")]
    public static partial void SecondSignal(this ILogger logger);

    [LoggerMessage(43, LogLevel.Information, "stopped")]
    public static partial void Stopped(this ILogger logger);

    [LoggerMessage(44, LogLevel.Error, "flushing export '{Export}' failed: {Problem}")]
    public static partial void FlushFailed(this ILogger logger, string export, string problem);
}
