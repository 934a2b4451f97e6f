using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>qemu-img convert out of and into a file export.</summary>
public sealed class QemuImgFileTests
{
    private const int Size = 32 << 20;

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task ReadOnlyFileExport_ConvertOut_GivesIdenticalBytes(Transport transport, Engine engine)
    {
        using var temp = new TempDirectory();
        byte[] original = temp.WriteRandom("disk.img", Size, seed: 1);
        using NbdfastProcess server = await transport.StartAsync(engine, temp.File("disk.img"));

        ToolResult convert = await ExternalTool.RunAsync(
            "qemu-img", ["convert", "-f", "raw", "-O", "raw", server.Uri(), temp.File("out.img")], TimeSpan.FromSeconds(60));

        Assert.True(convert.Succeeded, convert.Describe());
        Assert.Equal(0, await server.StopAsync());
        Bytes.AssertSame(original, File.ReadAllBytes(temp.File("out.img")));
        Bytes.AssertSame(original, File.ReadAllBytes(temp.File("disk.img")));
    }

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task WritableFileExport_ConvertIn_FileHoldsTheNewImageAfterSigterm(Transport transport, Engine engine)
    {
        using var temp = new TempDirectory();
        temp.WriteRandom("disk.img", Size, seed: 2);
        byte[] replacement = temp.WriteRandom("new.img", Size, seed: 3);
        using NbdfastProcess server = await transport.StartAsync(engine, "--writable", temp.File("disk.img"));

        ToolResult convert = await ExternalTool.RunAsync(
            "qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", temp.File("new.img"), server.Uri()], TimeSpan.FromSeconds(60));

        Assert.True(convert.Succeeded, convert.Describe());
        Assert.Equal(0, await server.StopAsync(Signals.SigTerm));
        Bytes.AssertSame(replacement, File.ReadAllBytes(temp.File("disk.img")));
    }
}
