using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using NbdFast.Devices;

namespace NbdFast.Tests.Support;

/// <summary>How an <see cref="InProcessServer"/> negotiates and what it serves.</summary>
public sealed record InProcessServerOptions
{
    /// <summary>Names returned to NBD_OPT_LIST; null refuses LIST with NBD_REP_ERR_POLICY.</summary>
    public IReadOnlyList<string>? Offer { get; init; }

    /// <summary>Resolves export names (INFO/GO answer with real sizes; unknown names get ERR_UNKNOWN).</summary>
    public NbdExportResolver? Resolver { get; init; }

    /// <summary>
    /// The device served on every connection whose negotiation did not resolve an export (any name is accepted
    /// when there is no resolver). Not disposed by the server.
    /// </summary>
    public IBlockDevice? Device { get; init; }

    /// <summary>Serve <see cref="Device"/> read-only (the library's default).</summary>
    public bool ReadOnly { get; init; } = true;

    /// <summary>Listen on a unix socket in a temporary directory instead of 127.0.0.1.</summary>
    public bool UnixSocket { get; init; }

    /// <summary>The export name put into <see cref="InProcessServer.Uri"/>.</summary>
    public string ExportName { get; init; } = string.Empty;

    /// <summary>Transmission options passed to ServeAsync.</summary>
    public ServeOptions? ServeOptions { get; init; }

    /// <summary>Handshake limits passed to ConnectAsync.</summary>
    public NegotiationOptions? NegotiationOptions { get; init; }

    /// <summary>
    /// The transmission transport. <see cref="Transport.Uring"/> makes the server create (and dispose) its own
    /// two-thread <see cref="NbdUringEngine"/>; starting fails when io_uring is unavailable.
    /// </summary>
    public Transport Transport { get; init; } = Transport.Streams;
}

/// <summary>What happened to one accepted connection on the server side.</summary>
public sealed class ServerConnection
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal ServerConnection(int id) => Id = id;

    /// <summary>Accept order, from 1.</summary>
    public int Id { get; }

    /// <summary>The export the client chose, once negotiation succeeded.</summary>
    public string? ExportName { get; internal set; }

    /// <summary>Negotiation succeeded and transmission started.</summary>
    public bool Negotiated { get; internal set; }

    /// <summary>The client negotiated structured replies.</summary>
    public bool StructuredReplies { get; internal set; }

    /// <summary>The client negotiated extended headers.</summary>
    public bool ExtendedHeaders { get; internal set; }

    /// <summary>What ConnectAsync or ServeAsync threw; null when the connection ended cleanly.</summary>
    public Exception? Error { get; internal set; }

    /// <summary>The connection has been closed on the server side.</summary>
    public Task Completion => _done.Task;

    internal void Complete() => _done.TrySetResult();

    /// <inheritdoc />
    public override string ToString() =>
        $"#{Id} export={(ExportName is null ? "(none)" : $"'{ExportName}'")} negotiated={Negotiated} sr={StructuredReplies} " +
        $"error={(Error is null ? "none" : $"{Error.GetType().Name}: {Error.Message}")}";
}

/// <summary>
/// Hosts the NbdFast library on a real socket (TCP on 127.0.0.1 or a unix socket) the way an application would:
/// an accept loop, and per connection ConnectAsync, ServeAsync and DisposeAsync. Records what each connection
/// did so tests can assert that the server saw no unexpected errors.
/// </summary>
public sealed class InProcessServer : IAsyncDisposable
{
    private readonly InProcessServerOptions _options;
    private readonly Socket _listener;
    private readonly string? _socketDirectory;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentQueue<ServerConnection> _connections = new();
    private readonly ConcurrentDictionary<Task, byte> _handlers = new();
    private readonly Task _acceptLoop;
    private readonly NbdUringEngine? _engine;
    private int _nextId;
    private int _disposed;

    private InProcessServer(InProcessServerOptions options)
    {
        if (options.Device is null && options.Resolver is null)
        {
            throw new ArgumentException("Give a device, a resolver, or both.", nameof(options));
        }
        _options = options;
        if (options.Transport == Transport.Uring)
        {
            // Not a skip: the io_uring transport is part of what is under test.
            _engine = NbdUringEngine.TryCreate(2, out string? reason)
                ?? throw new InvalidOperationException($"io_uring is unavailable, so the io_uring transport cannot be tested: {reason}");
        }
        try
        {
            if (options.UnixSocket)
            {
                // sun_path is limited to 108 bytes, so stay directly under /tmp.
                _socketDirectory = Directory.CreateTempSubdirectory("nbdfast-sock-").FullName;
                SocketPath = Path.Combine(_socketDirectory, "nbd.sock");
                _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
                Uri = $"nbd+unix:///{EscapeName(options.ExportName)}?socket={SocketPath}";
            }
            else
            {
                _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
                Uri = $"nbd://127.0.0.1:{Port}/{EscapeName(options.ExportName)}";
            }
            _listener.Listen(64);
        }
        catch
        {
            _engine?.Dispose();
            throw;
        }
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Starts a server with <paramref name="options"/>.</summary>
    public static InProcessServer Start(InProcessServerOptions options) => new(options);

    /// <summary>Starts a server that serves <paramref name="device"/> under any name.</summary>
    public static InProcessServer Start(IBlockDevice device, bool readOnly = true, bool unixSocket = false, string exportName = "",
        Transport transport = Transport.Streams) =>
        new(new InProcessServerOptions { Device = device, ReadOnly = readOnly, UnixSocket = unixSocket, ExportName = exportName, Transport = transport });

    /// <summary>The transport connections are served through.</summary>
    public Transport Transport => _options.Transport;

    /// <summary>The server's io_uring engine (null on <see cref="Transport.Streams"/>).</summary>
    public NbdUringEngine? Engine => _engine;

    /// <summary>The NBD URI of the configured export: nbd://127.0.0.1:PORT/NAME or nbd+unix:///NAME?socket=PATH.</summary>
    public string Uri { get; }

    /// <summary>The TCP port (0 on a unix socket).</summary>
    public int Port { get; }

    /// <summary>The unix socket path (null on TCP).</summary>
    public string? SocketPath { get; }

    /// <summary>Builds the URI of another export on the same server.</summary>
    public string UriFor(string exportName) => SocketPath is null
        ? $"nbd://127.0.0.1:{Port}/{EscapeName(exportName)}"
        : $"nbd+unix:///{EscapeName(exportName)}?socket={SocketPath}";

    /// <summary>Every connection accepted so far, in accept order.</summary>
    public IReadOnlyList<ServerConnection> Connections => [.. _connections];

    /// <summary>Waits until every connection accepted so far has been closed on the server side.</summary>
    public async Task WaitForIdleAsync(TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(15);
        Task all = Task.WhenAll(_connections.Select(c => c.Completion));
        if (await Task.WhenAny(all, Task.Delay(limit)).ConfigureAwait(false) != all)
        {
            throw new TimeoutException($"Server connections still open after {limit.TotalSeconds:F0} s: {Describe()}");
        }
    }

    /// <summary>
    /// Waits for every connection to close, then fails unless none of them threw (apart from the exception types
    /// in <paramref name="allowed"/>). Returns the connections.
    /// </summary>
    public async Task<IReadOnlyList<ServerConnection>> AssertNoErrorsAsync(params Type[] allowed)
    {
        await WaitForIdleAsync().ConfigureAwait(false);
        IReadOnlyList<ServerConnection> connections = Connections;
        List<ServerConnection> failed = [.. connections.Where(c => c.Error is not null && !allowed.Any(t => t.IsInstanceOfType(c.Error)))];
        Assert.True(failed.Count == 0, $"Unexpected server-side errors:{Environment.NewLine}{string.Join(Environment.NewLine, failed.Select(f => $"{f}{Environment.NewLine}{f.Error}"))}");
        return connections;
    }

    /// <summary>One line per connection, for assertion messages.</summary>
    public string Describe()
    {
        var text = new StringBuilder($"transport={Transport}");
        foreach (ServerConnection connection in _connections)
        {
            text.AppendLine().Append(connection).Append(connection.Completion.IsCompleted ? " (closed)" : " (open)");
        }
        return _connections.IsEmpty ? text.Append(" (no connections)").ToString() : text.ToString();
    }

    /// <summary>
    /// Cancels the token every ConnectAsync and ServeAsync got, as a host shutting down would, without waiting
    /// for anything; <see cref="DisposeAsync"/> still cleans up afterwards.
    /// </summary>
    public void CancelServing() => _stopping.Cancel();

    /// <summary>Stops listening, ends open sessions and removes the unix socket.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        Task handlers = Task.WhenAll(_handlers.Keys);
        await Task.WhenAny(handlers, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        _stopping.Dispose();
        // The reactors stop once the connections they own have closed.
        _engine?.Dispose();
        if (_socketDirectory is not null)
        {
            try
            {
                Directory.Delete(_socketDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static string EscapeName(string name) => System.Uri.EscapeDataString(name);

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            if (socket.AddressFamily == AddressFamily.InterNetwork)
            {
                socket.NoDelay = true;
            }
            // Record the connection before the greeting is sent: a client that saw any byte is always counted.
            var record = new ServerConnection(Interlocked.Increment(ref _nextId));
            _connections.Enqueue(record);
            // With io_uring the handshake makes blocking socket calls, so each connection gets a thread of its own.
            Task handler = _engine is null
                ? Task.Run(() => HandleAsync(socket, record))
                : Task.Factory.StartNew(() => HandleAsync(socket, record), CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
            _handlers.TryAdd(handler, 0);
            _ = handler.ContinueWith(t => _handlers.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task HandleAsync(Socket socket, ServerConnection record)
    {
        try
        {
            var channel = _engine is null ? new NbdChannel(new NetworkStream(socket, ownsSocket: true)) : new NbdChannel(socket, _engine);
            if (_engine is not null && channel.Uring is null)
            {
                // A silent fallback to the stream transport would make the io_uring rows test nothing.
                await channel.DisposeAsync().ConfigureAwait(false);
                throw new InvalidOperationException("The channel did not take the io_uring engine.");
            }
            (string name, NbdConnection connection) = await NbdServer.ConnectAsync(
                channel, _options.Offer, _options.Resolver, _options.NegotiationOptions, _stopping.Token).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                record.ExportName = name;
                record.Negotiated = true;
                record.StructuredReplies = connection.StructuredReplies;
                record.ExtendedHeaders = connection.ExtendedHeaders;
                if (connection.Export is not null)
                {
                    await connection.ServeAsync(_options.ServeOptions, _stopping.Token).ConfigureAwait(false);
                }
                else
                {
                    IBlockDevice device = _options.Device
                        ?? throw new InvalidOperationException($"No device for export '{name}': the resolver did not resolve it and no fixed device is configured.");
                    await connection.ServeAsync(device, _options.ReadOnly, _options.ServeOptions, _stopping.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e)
        {
            // ClientRequestedAbortException, NbdProtocolException and anything unexpected: the test decides.
            record.Error = e;
        }
        finally
        {
            record.Complete();
        }
    }
}
