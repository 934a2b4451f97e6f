using System.Net.Sockets;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>Which reply style the client negotiates.</summary>
public enum ReplyStyle
{
    /// <summary>Neither structured replies nor extended headers: simple replies, 28-byte requests.</summary>
    Simple,
    /// <summary>NBD_OPT_STRUCTURED_REPLY: 20-byte chunks, 28-byte requests.</summary>
    Structured,
    /// <summary>NBD_OPT_EXTENDED_HEADERS: 32-byte chunks and requests.</summary>
    Extended,
}

/// <summary>
/// A server in the transmission phase: the raw client negotiates the chosen reply style (and optionally
/// base:allocation), sends GO, and the server serves <see cref="Device"/> until the session ends, then
/// closes the connection. <see cref="Serving"/> is that whole server side.
/// </summary>
internal sealed class TransmissionServer : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private TransmissionServer(RawNbdClient client, IBlockDevice device, Task serving, RawExportInfo export, uint? metaContextId)
    {
        Client = client;
        Device = device;
        Serving = serving;
        Export = export;
        MetaContextId = metaContextId;
    }

    public RawNbdClient Client { get; }
    public IBlockDevice Device { get; }

    /// <summary>ConnectAsync, ServeAsync and the close that follows.</summary>
    public Task Serving { get; }

    /// <summary>What GO reported.</summary>
    public RawExportInfo Export { get; }

    /// <summary>The id SET_META_CONTEXT gave base:allocation, when it was selected.</summary>
    public uint? MetaContextId { get; }

    public static async Task<TransmissionServer> StartAsync(
        IBlockDevice device,
        ReplyStyle style = ReplyStyle.Simple,
        bool readOnly = false,
        bool allocationContext = false,
        ServeOptions? options = null,
        int? socketBufferSize = null)
    {
        (RawNbdClient client, Socket socket) = await RawNbdClient.ConnectLoopbackAsync(socketBufferSize);
        var channel = new NbdChannel(new NetworkStream(socket, ownsSocket: true));
        Task serving = Task.Run(async () =>
        {
            (_, NbdConnection connection) = await NbdServer.ConnectAsync(channel);
            await using (connection)
            {
                await connection.ServeAsync(device, readOnly, options);
            }
        });

        await client.StartAsync();
        if (style != ReplyStyle.Simple)
        {
            NbdOption option = style == ReplyStyle.Extended ? NbdOption.ExtendedHeaders : NbdOption.StructuredReply;
            RawOptionReply ack = Assert.Single(await client.OptionAsync(option));
            Assert.Equal(NbdOptionReplyType.Ack, ack.Type);
        }
        uint? metaContextId = null;
        if (allocationContext)
        {
            IReadOnlyList<RawOptionReply> replies = await client.OptionAsync(NbdOption.SetMetaContext, RawNbdClient.MetaContextPayload("", "base:allocation"));
            Assert.Equal([NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack], replies.Select(r => r.Type));
            metaContextId = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(replies[0].Payload);
        }
        RawExportInfo export = await client.GoAsync("");
        client.ExtendedHeaders = style == ReplyStyle.Extended;
        return new TransmissionServer(client, device, serving, export, metaContextId);
    }

    /// <summary>Waits for the server side to finish (and rethrows its failure).</summary>
    public Task StoppedAsync() => Serving.WaitAsync(Timeout);

    /// <summary>Sends NBD_CMD_DISC and asserts the session ends and the connection closes without further bytes.</summary>
    public async Task DisconnectAsync()
    {
        await Client.SendDisconnectAsync();
        await StoppedAsync();
        await Client.AssertClosedAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        try
        {
            await Serving.WaitAsync(Timeout);
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            // Tests assert on how serving ended where it matters.
        }
    }
}
