using System.Text;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;
using static NbdFast.Tests.Negotiation.OptionReplies;

namespace NbdFast.Tests.Negotiation;

/// <summary>
/// <see cref="NbdExport.UnavailableReason"/>: GO is refused with ERR_POLICY and the reason, INFO still describes
/// the export, and the client may go on to choose another.
/// </summary>
public sealed class UnavailableExportTests
{
    private static NbdExportResolver Resolver(MemoryDevice device) => (name, _) => ValueTask.FromResult<NbdExport?>(name switch
    {
        "full" => new NbdExport(device) { UnavailableReason = "at its connection limit" },
        "open" => new NbdExport(device),
        _ => null,
    });

    [Fact]
    public async Task Go_IsRefusedWithTheReason_InfoStillAnswers_AnotherExportCanBeChosen()
    {
        var device = new MemoryDevice(1 << 20);
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: Resolver(device));

        RawExportInfo info = await server.Client.GoAsync("full", NbdOption.Info);
        Assert.Equal((ulong)device.Size, info.Size);
        RawOptionReply refused = AssertError(await server.Client.OptionAsync(NbdOption.Go, RawNbdClient.InfoPayload("full")), NbdOption.Go, NbdOptionReplyType.ErrPolicy);
        Assert.Contains("connection limit", Encoding.UTF8.GetString(refused.Payload), StringComparison.Ordinal);

        await server.Client.GoAsync("open");
        Assert.Equal("open", (await server.ConnectedAsync()).Name);
    }
}
