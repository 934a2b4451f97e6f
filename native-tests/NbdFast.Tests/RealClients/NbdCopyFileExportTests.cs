using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// nbdcopy both ways between local files and a <see cref="FileDevice"/> export: file to export (the backing file
/// then holds the source's bytes), export to file (the copy holds the backing file's bytes).
/// </summary>
public sealed class NbdCopyFileExportTests
{
    private const int TestTimeout = 120_000;
    private const int Size = 24 * 1024 * 1024;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.BothOnTcpAndUnix), MemberType = typeof(Transports))]
    public async Task FileToExport_ThenExportToFile_BytesMatch(Transport transport, bool unixSocket)
    {
        using var temp = new TempDirectory();
        string source = temp.File("source.img");
        byte[] expected = Images.CreateStriped(source, Size, seed: 40 + (unixSocket ? 1 : 0) + (transport == Transport.Uring ? 2 : 0));
        // The export starts full of other data, so every byte (zero stripes too) has to be copied.
        string backing = temp.CreateRandomFile("backing.img", Size, seed: 45);
        string copy = temp.File("copy.img");

        FileDevice device = FileDevice.Open(backing);
        await using (device)
        {
            await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: unixSocket, transport: transport);

            await ExternalTool.RunCheckedAsync("nbdcopy", ["--flush", "--requests=32", source, server.Uri]);
            await server.AssertNoErrorsAsync();
            byte[] written = await File.ReadAllBytesAsync(backing);
            DeviceContents.AssertEqual(expected, written, "backing file after nbdcopy file -> export");

            // Change a few bytes in the backing file (the server reads what the file holds), so that a correct copy out
            // differs from the source.
            byte[] marker = "export -> file"u8.ToArray();
            await using (var file = new FileStream(backing, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            {
                file.Position = Size - 4096 - marker.Length;
                await file.WriteAsync(marker);
            }
            marker.CopyTo(expected, Size - 4096 - marker.Length);

            await ExternalTool.RunCheckedAsync("nbdcopy", ["--requests=32", server.Uri, copy]);
            await server.AssertNoErrorsAsync();
        }

        byte[] copied = await File.ReadAllBytesAsync(copy);
        DeviceContents.AssertEqual(expected, copied, "copy after nbdcopy export -> file");
    }
}
