using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.BadInput;

/// <summary>
/// One <see cref="BadInputServer"/> per engine and export kind, started on first use and shared by the cases of
/// one test class (xunit runs a class's cases one at a time, so each case sees the server to itself and the
/// baseline stays meaningful). Sharing is the point: every case runs against a server that has already
/// survived the cases before it.
/// </summary>
public sealed class BadInputServers : IAsyncLifetime
{
    private readonly Dictionary<(Engine, ExportKind), BadInputServer> _servers = [];
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// <summary>io_uring and sockets, each with a RAM disk.</summary>
    public static TheoryData<Engine> Engines => new() { Engine.Uring, Engine.Sockets };

    /// <summary>io_uring and sockets, each with a RAM disk and a file.</summary>
    public static TheoryData<Engine, ExportKind> EnginesAndExports => new()
    {
        { Engine.Uring, ExportKind.Memory },
        { Engine.Sockets, ExportKind.Memory },
        { Engine.Uring, ExportKind.File },
        { Engine.Sockets, ExportKind.File },
    };

    public async Task<BadInputServer> GetAsync(Engine engine, ExportKind export = ExportKind.Memory)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_servers.TryGetValue((engine, export), out BadInputServer? server))
            {
                server = await BadInputServer.StartAsync(engine, export).ConfigureAwait(false);
                _servers[(engine, export)] = server;
            }
            return server;
        }
        finally
        {
            _lock.Release();
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (BadInputServer server in _servers.Values)
        {
            await server.DisposeAsync().ConfigureAwait(false);
        }
        _servers.Clear();
        _lock.Dispose();
    }
}
