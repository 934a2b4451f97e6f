using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;
using NbdFast.Tests.Transmission;

namespace NbdFast.Tests.Lifecycle;

/// <summary>CloseAsync as a hard stop while ServeAsync runs, and ServeOptions.IdleTimeout, on both transports.</summary>
public class HardStopAndIdleTests
{
    private const int ReadLength = 256 * 1024;

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task CloseAsyncEndsServingWhileAClientThatReadsNoRepliesKeepsTheServerBusy(Transport transport)
    {
        var device = new MemoryDevice(64L * ReadLength);
        // Small kernel buffers: the server's replies back up at once, so its sends block and its budget fills.
        await using LifecycleHost host = await LifecycleHost.StartServingAsync(transport, device, socketBufferSize: 16 * 1024);
        NbdConnection connection = await host.Connection;

        int sent = 0;
        using var stopSending = new CancellationTokenSource();
        Task sender = Task.Run(async () =>
        {
            for (int i = 0; !stopSending.IsCancellationRequested; i++)
            {
                byte[] request = host.Client.EncodeRequest((ushort)NbdCommand.Read, (ulong)(i % 64) * ReadLength, ReadLength, cookie: (ulong)i);
                await host.Client.Stream.WriteAsync(request, stopSending.Token);
                Interlocked.Increment(ref sent);
            }
        });
        await WaitUntilStalledAsync(() => Volatile.Read(ref sent), sender);
        Assert.False(host.Server.IsCompleted, "serving ended before the hard stop");

        // From another thread than the one serving, as a host's shutdown deadline or second signal would.
        await Task.Run(() => connection.CloseAsync().AsTask()).WaitAsync(LifecycleHost.Patience);
        await host.ServerFinishedAsync();
        Assert.True(host.Server.IsCompletedSuccessfully);
        await stopSending.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => sender.WaitAsync(LifecycleHost.Patience));
        Assert.True(Volatile.Read(ref sent) > 64, $"only {sent} requests were sent: too few to keep the server busy");
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task CloseAsyncDuringAGracefulDrainEndsServing(Transport transport)
    {
        var device = new ShutdownProbeDevice(1 << 20);
        await using LifecycleHost host = await LifecycleHost.StartServingAsync(transport, device,
            options: new ServeOptions { ShutdownLinger = TimeSpan.FromMinutes(5) });
        NbdConnection connection = await host.Connection;
        for (int i = 0; i < 16; i++)
        {
            await host.Client.SendWriteAsync((ulong)(i * 4096), GracefulShutdownTests.Block(i), cookie: (ulong)i);
        }
        await device.WaitForWritesAsync(16);
        await host.Shutdown.CancelAsync();

        // The writes are stuck in the device; the host gives up waiting and closes. Once the device lets them
        // go, serving ends (their replies are dropped: the connection is gone).
        Task close = Task.Run(() => connection.CloseAsync().AsTask());
        device.Open();
        await close.WaitAsync(LifecycleHost.Patience);
        await host.ServerFinishedAsync();
        Assert.True(host.Server.IsCompletedSuccessfully);
        Assert.Equal(16, device.WritesDone);
        Assert.True(await host.Client.ReadUntilClosedAsync() is not null, "the client's connection stayed open");
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task IdleTimeoutClosesAConnectionThatSendsNothing(Transport transport)
    {
        var device = new MemoryDevice(1 << 20);
        await using LifecycleHost host = await LifecycleHost.StartServingAsync(transport, device,
            options: new ServeOptions { IdleTimeout = TimeSpan.FromMilliseconds(300) });
        await host.Client.SendRequestAsync(NbdCommand.Read, 0, 4096, cookie: 1);
        Assert.Equal(NbdError.None, (await host.Client.ReadReplyAsync(4096)).Error);

        await host.ServerFinishedAsync();
        await host.Client.AssertClosedAsync();
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task IdleTimeoutSparesAConnectionWithARequestInFlight(Transport transport)
    {
        var device = new GatedDevice(1 << 20, gatedOffset: 0);
        device.Inner.Write(0, GracefulShutdownTests.Block(9));
        await using LifecycleHost host = await LifecycleHost.StartServingAsync(transport, device, ReplyStyle.Structured,
            new ServeOptions { IdleTimeout = TimeSpan.FromMilliseconds(200) });

        await host.Client.SendRequestAsync(NbdCommand.Read, 0, 4096, cookie: 3);
        await device.WaitForReadsAsync(1, LifecycleHost.Patience);
        // Many idle periods pass while the read waits in the device: the connection is busy, not idle.
        await Task.Delay(TimeSpan.FromMilliseconds(1500));
        Assert.False(host.Server.IsCompleted, "the idle timeout closed a connection with a request in flight");
        device.Open();
        IReadOnlyList<RawReply> reply = await host.Client.ReadFullReplyAsync();
        Assert.Equal(NbdError.None, reply[^1].Error);
        Assert.Equal(GracefulShutdownTests.Block(9), reply.Single(r => r.Header.Type == NbdReplyType.OffsetData).Payload.AsSpan(8).ToArray());

        // Now it is idle.
        await host.ServerFinishedAsync();
        await host.Client.AssertClosedAsync();
    }

    /// <summary>Waits until <paramref name="progress"/> stops moving for a second (or the sender fails).</summary>
    private static async Task WaitUntilStalledAsync(Func<int> progress, Task sender)
    {
        using var limit = new CancellationTokenSource(LifecycleHost.Patience);
        int last = -1;
        DateTime changed = DateTime.UtcNow;
        while (DateTime.UtcNow - changed < TimeSpan.FromSeconds(1))
        {
            Assert.False(sender.IsCompleted, $"the sender stopped: {sender.Exception?.InnerException?.Message}");
            await Task.Delay(100, limit.Token);
            int now = progress();
            if (now != last)
            {
                last = now;
                changed = DateTime.UtcNow;
            }
        }
    }
}
