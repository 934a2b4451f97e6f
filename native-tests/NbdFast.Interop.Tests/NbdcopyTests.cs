using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>nbdcopy a random image into a writable RAM disk and back out.</summary>
public sealed class NbdcopyTests
{
    private const int Size = 64 << 20;

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task CopyInThenOut_GivesIdenticalBytes(Transport transport, Engine engine)
    {
        using var temp = new TempDirectory();
        byte[] image = temp.WriteRandom("in.img", Size, seed: 4);
        using NbdfastProcess server = await transport.StartAsync(engine, "--memory", "64M", "--writable");

        ToolResult copyIn = await ExternalTool.RunAsync("nbdcopy", [temp.File("in.img"), server.Uri()], TimeSpan.FromSeconds(60));
        Assert.True(copyIn.Succeeded, copyIn.Describe());

        ToolResult copyOut = await ExternalTool.RunAsync("nbdcopy", [server.Uri(), temp.File("out.img")], TimeSpan.FromSeconds(60));
        Assert.True(copyOut.Succeeded, copyOut.Describe());

        Bytes.AssertSame(image, File.ReadAllBytes(temp.File("out.img")));
        Assert.Equal(0, await server.StopAsync());
    }
}
