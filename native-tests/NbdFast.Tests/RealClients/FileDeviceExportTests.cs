using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>A <see cref="FileDevice"/> export on a temporary file, written and read by qemu-img and nbdcopy.</summary>
public sealed class FileDeviceExportTests
{
    private const int TestTimeout = 180_000;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task QemuImgConvertIn_FileHoldsSourceBytes(Transport transport)
    {
        using var temp = new TempDirectory();
        string source = temp.File("source.img");
        Images.CreateStriped(source, Images.Size64MiB, seed: 31);
        string backing = temp.File("backing.img");
        // Start from non-zero contents so zero stripes must really be zeroed in the file.
        temp.CreateRandomFile("garbage.img", Images.Size64MiB, seed: 32);
        File.Move(temp.File("garbage.img"), backing);

        FileDevice device = FileDevice.Open(backing);
        await using (device)
        {
            Assert.Equal(Images.Size64MiB, device.Size);
            await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: true, transport: transport);

            await ExternalTool.RunCheckedAsync("qemu-img", ["convert", "-n", "-W", "-m", "16", "-f", "raw", "-O", "raw", source, server.Uri]);
            await server.AssertNoErrorsAsync();

            // Read back through the server too.
            await ExternalTool.RunCheckedAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", source, server.Uri]);
            await server.AssertNoErrorsAsync();
        }

        await DeviceContents.AssertFilesEqualAsync(source, backing);
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task NbdCopyOut_OfReadOnlyFileExport_MatchesFile(Transport transport)
    {
        using var temp = new TempDirectory();
        string backing = temp.File("backing.img");
        Images.CreateStriped(backing, 16 * 1024 * 1024, seed: 33);
        FileDevice device = FileDevice.Open(backing, readOnly: true);
        await using (device)
        {
            await using var server = InProcessServer.Start(device, readOnly: false, transport: transport); // the device itself is read-only
            ToolResult info = await ExternalTool.RunCheckedAsync("nbdinfo", ["--json", server.Uri]);
            Assert.Contains("\"is_read_only\": true", info.StdOut, StringComparison.Ordinal);

            string copy = temp.File("copy.img");
            await ExternalTool.RunCheckedAsync("nbdcopy", [server.Uri, copy]);
            await server.AssertNoErrorsAsync();
            await DeviceContents.AssertFilesEqualAsync(backing, copy);
        }
    }
}
