using System.Net;
using System.Net.Sockets;
using NbdFast.Devices;

namespace NbdFast.Tests.Uring;

/// <summary>Serves one device over TCP loopback through an io_uring engine, one task per accepted client.</summary>
internal sealed class UringServerHost : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _sessions = new();
    private readonly Task _acceptLoop;

    public UringServerHost(NbdUringEngine engine, IBlockDevice device, bool readOnly = false)
    {
        Engine = engine;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        _acceptLoop = AcceptAsync(device, readOnly);
    }

    public NbdUringEngine Engine { get; }

    public EndPoint EndPoint => _listener.LocalEndPoint!;

    /// <summary>The NBD URI of the default export.</summary>
    public string Uri => $"nbd://127.0.0.1:{((IPEndPoint)EndPoint).Port}/";

    private async Task AcceptAsync(IBlockDevice device, bool readOnly)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            lock (_sessions)
            {
                _sessions.Add(Task.Factory.StartNew(() => ServeAsync(client, device, readOnly), CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap());
            }
        }
    }

    private async Task ServeAsync(Socket client, IBlockDevice device, bool readOnly)
    {
        var channel = new NbdChannel(client, Engine);
        (_, NbdConnection connection) = await NbdServer.ConnectAsync(channel, offer: [""]);
        await using (connection)
        {
            await connection.ServeAsync(device, readOnly);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        await _acceptLoop;
        Task[] sessions;
        lock (_sessions)
        {
            sessions = [.. _sessions];
        }
        await Task.WhenAll(sessions).WaitAsync(TimeSpan.FromSeconds(30));
    }
}
