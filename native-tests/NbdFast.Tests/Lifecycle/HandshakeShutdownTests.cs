using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;
using NbdFast.Tests.Tls;

namespace NbdFast.Tests.Lifecycle;

/// <summary>
/// ConnectAsync's token as a shutdown: the client's next option gets NBD_REP_ERR_SHUTDOWN (2^31 + 7 on the
/// wire) and the connection closes; ABORT still gets its ACK; a silent client is closed after the grace.
/// </summary>
public class HandshakeShutdownTests
{
    private const uint ErrShutdownOnTheWire = (1u << 31) + 7;

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task NextOptionAfterShutdownGetsErrShutdownAndTheConnectionCloses(Transport transport)
    {
        await using LifecycleHost host = await LifecycleHost.StartHandshakeAsync(transport);
        await host.Client.StartAsync();
        Assert.Equal(NbdOptionReplyType.Ack, Assert.Single(await host.Client.OptionAsync(NbdOption.StructuredReply)).Type);

        await host.Shutdown.CancelAsync();
        RawOptionReply reply = Assert.Single(await host.Client.OptionAsync(NbdOption.Go, RawNbdClient.InfoPayload("")));
        Assert.Equal(ErrShutdownOnTheWire, (uint)reply.Type);
        Assert.Equal((uint)NbdOption.Go, reply.Header.Option);
        await host.Client.AssertClosedAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(host.ServerFinishedAsync);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task AbortAfterShutdownStillGetsItsAck(Transport transport)
    {
        await using LifecycleHost host = await LifecycleHost.StartHandshakeAsync(transport);
        await host.Client.StartAsync();
        await host.Shutdown.CancelAsync();

        RawOptionReply reply = Assert.Single(await host.Client.OptionAsync(NbdOption.Abort));
        Assert.Equal(NbdOptionReplyType.Ack, reply.Type);
        await host.Client.AssertClosedAsync();
        await Assert.ThrowsAsync<ClientRequestedAbortException>(host.ServerFinishedAsync);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task ClientThatSendsNothingIsClosedAfterTheGrace(Transport transport)
    {
        var options = new NegotiationOptions { ShutdownGrace = TimeSpan.FromMilliseconds(200), HandshakeTimeout = Timeout.InfiniteTimeSpan };
        await using LifecycleHost host = await LifecycleHost.StartHandshakeAsync(transport, options);
        await host.Client.StartAsync();
        await host.Shutdown.CancelAsync();

        await host.Client.AssertClosedAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(host.ServerFinishedAsync);
    }

    [Fact]
    public async Task OptionAfterStartTlsGetsErrShutdownOverTls()
    {
        await using LifecycleHost host = await LifecycleHost.StartHandshakeAsync(Transport.Streams, tls: TlsSetup.Options());
        await host.Client.StartAsync();
        host.UseClient(await TlsSetup.StartTlsAsync(host.Client));

        await host.Shutdown.CancelAsync();
        RawOptionReply reply = Assert.Single(await host.Client.OptionAsync(NbdOption.List));
        Assert.Equal(ErrShutdownOnTheWire, (uint)reply.Type);
        Assert.Equal((uint)NbdOption.List, reply.Header.Option);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(host.ServerFinishedAsync);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task GoStillOwedWhenServingStartsAfterShutdownGetsErrShutdown(Transport transport)
    {
        // Without a resolver the GO reply is sent by ServeAsync; by then the host is shutting down.
        await using LifecycleHost host = await LifecycleHost.StartHandshakeAsync(transport);
        await host.Client.StartAsync();
        await host.Client.SendOptionAsync(NbdOption.Go, RawNbdClient.InfoPayload(""));
        NbdConnection connection = await host.Connection.WaitAsync(LifecycleHost.Patience);
        await host.Shutdown.CancelAsync();
        Task serving = connection.ServeAsync(new MemoryDevice(1 << 20), cancellationToken: host.Shutdown.Token);

        RawOptionReply reply = await host.Client.ReadOptionReplyAsync();
        Assert.Equal(ErrShutdownOnTheWire, (uint)reply.Type);
        Assert.Equal((uint)NbdOption.Go, reply.Header.Option);
        await serving.WaitAsync(LifecycleHost.Patience);
    }
}
