using System.Globalization;
using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>qemu-img (qemu's NBD block driver) against the library on a real socket.</summary>
public sealed class QemuImgTests
{
    private const int TestTimeout = 180_000;

    [Fact(Timeout = TestTimeout)]
    public async Task Info_ShowsVirtualSize()
    {
        var device = new MemoryDevice(48L * 1024 * 1024 * 1024);
        await using var server = InProcessServer.Start(device, exportName: "big");

        ToolResult json = await ExternalTool.RunCheckedAsync("qemu-img", ["info", "--output=json", server.Uri]);
        ToolResult text = await ExternalTool.RunCheckedAsync("qemu-img", ["info", server.Uri]);

        using JsonDocument document = JsonDocument.Parse(json.StdOut);
        Assert.Equal(device.Size, document.RootElement.GetProperty("virtual-size").GetInt64());
        Assert.Equal("raw", document.RootElement.GetProperty("format").GetString());
        Assert.Contains("virtual size: 48 GiB (51539607552 bytes)", text.StdOut, StringComparison.Ordinal);
        IReadOnlyList<ServerConnection> connections = await server.AssertNoErrorsAsync();
        Assert.All(connections, c => Assert.Equal("big", c.ExportName));
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.UringOnUnixStreamsOnBoth), MemberType = typeof(Transports))]
    public async Task ConvertIn_ConvertOut_RoundTripsImage(Transport transport, bool unixSocket)
    {
        using var temp = new TempDirectory();
        string source = temp.File("source.img");
        byte[] expected = Images.CreateStriped(source, Images.Size64MiB, seed: (unixSocket ? 11 : 12) + (transport == Transport.Uring ? 100 : 0));
        var device = new MemoryDevice(Images.Size64MiB);
        // Start from garbage, so the zero stripes of the source really have to be written as zeroes.
        await DeviceContents.FillRandomAsync(device, seed: 99);
        await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: unixSocket, transport: transport);

        // Into the export: out-of-order writes, 16 coroutines, so many requests are in flight at once.
        await ExternalTool.RunCheckedAsync("qemu-img", ["convert", "-n", "-W", "-m", "16", "-f", "raw", "-O", "raw", source, server.Uri]);
        await server.AssertNoErrorsAsync();
        byte[] written = await DeviceContents.ReadAllAsync(device);
        DeviceContents.AssertEqual(expected, written, "device after qemu-img convert in");

        // Out of the export into a new file (qemu-img also asks for block status to find the zero stripes).
        string copy = temp.File("copy.img");
        await ExternalTool.RunCheckedAsync("qemu-img", ["convert", "-f", "raw", "-O", "raw", server.Uri, copy]);
        await DeviceContents.AssertFilesEqualAsync(source, copy);
        await server.AssertNoErrorsAsync();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Compare_IdenticalThenMismatchAtChangedOffset()
    {
        using var temp = new TempDirectory();
        string source = temp.File("source.img");
        byte[] contents = Images.CreateStriped(source, 16 * 1024 * 1024, seed: 5);
        var device = new MemoryDevice(contents.Length);
        await device.WriteAsync(0, contents, WriteFlags.None);
        await using var server = InProcessServer.Start(device, unixSocket: true);

        ToolResult same = await ExternalTool.RunCheckedAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", source, server.Uri]);
        Assert.Contains("Images are identical.", same.StdOut, StringComparison.Ordinal);

        const long Changed = 5 * 1024 * 1024 + 12345;
        await device.WriteAsync(Changed, new[] { (byte)(contents[Changed] ^ 0xff) }, WriteFlags.None);
        ToolResult different = await ExternalTool.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", source, server.Uri]);

        Assert.True(different.ExitCode == 1, different.Describe());
        // qemu-img compare names the 512-byte sector that holds the first difference.
        long sector = Changed / 512 * 512;
        Assert.Contains($"Content mismatch at offset {sector.ToString(CultureInfo.InvariantCulture)}!", different.StdOut, StringComparison.Ordinal);
        await server.AssertNoErrorsAsync();
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Map_ReportsDataAndZeroRanges(Transport transport)
    {
        var device = new MemoryDevice(8 * 1024 * 1024);
        await device.WriteAsync(2 * 1024 * 1024, new byte[] { 7 }, WriteFlags.None);          // one 64 KiB chunk of data
        await device.WriteAsync(6 * 1024 * 1024, new byte[256 * 1024], WriteFlags.None);       // 256 KiB allocated
        await using var server = InProcessServer.Start(device, transport: transport);

        ToolResult result = await ExternalTool.RunCheckedAsync("qemu-img", ["map", "--output=json", "-f", "raw", server.Uri]);

        using JsonDocument document = JsonDocument.Parse(result.StdOut);
        string[] ranges = [.. document.RootElement.EnumerateArray().Select(e =>
            $"{e.GetProperty("start").GetInt64()}+{e.GetProperty("length").GetInt64()}:" +
            $"{(e.GetProperty("data").GetBoolean() ? "data" : "nodata")},{(e.GetProperty("zero").GetBoolean() ? "zero" : "nonzero")}")];
        Assert.Equal(
        [
            "0+2097152:nodata,zero",
            "2097152+65536:data,nonzero",
            "2162688+4128768:nodata,zero",
            "6291456+262144:data,nonzero",
            "6553600+1835008:nodata,zero",
        ], ranges);
        await server.AssertNoErrorsAsync();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task ConvertIn_ToReadOnlyExport_Fails()
    {
        using var temp = new TempDirectory();
        string source = temp.File("source.img");
        Images.CreateStriped(source, 4 * 1024 * 1024, seed: 3);
        var device = new MemoryDevice(4 * 1024 * 1024);
        await using var server = InProcessServer.Start(device, readOnly: true);

        ToolResult result = await ExternalTool.RunAsync("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", source, server.Uri]);

        result.EnsureFailure();
        await server.AssertNoErrorsAsync();
        Assert.Equal(0, device.CommittedBytes);
    }
}
