using System.Text;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// qemu-io's <c>read -v</c> (hex dump), <c>write -z</c>, <c>discard</c>, <c>aio_read</c> and <c>aio_flush</c>
/// against a memory and a file export: each succeeds, prints what qemu-io prints for it, and changes exactly the
/// bytes it should.
/// </summary>
public sealed class QemuIoCommandTests
{
    private const int TestTimeout = 120_000;
    private const int Size = 4 * 1024 * 1024;
    private const int K64 = 64 * 1024;


    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task ReadVerbose_WriteZeroes_Discard_AioReadAndFlush(Transport transport, bool fileDevice)
    {
        using var temp = new TempDirectory();
        string backing = temp.CreateRandomFile("backing.img", Size, seed: fileDevice ? 71 : 72);
        byte[] original = await File.ReadAllBytesAsync(backing);
        IBlockDevice device;
        if (fileDevice)
        {
            device = FileDevice.Open(backing);
        }
        else
        {
            device = new MemoryDevice(Size);
            await device.WriteAsync(0, original, WriteFlags.None);
        }

        byte[] after;
        await using (device)
        {
            await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

            ToolResult result = await ExternalTool.RunCheckedAsync("qemu-io",
            [
                "-f", "raw",
                "-c", "read -v 0 512",
                "-c", "write -z 0 64k",
                "-c", "read -P 0 0 64k",
                "-c", "discard 64k 64k",
                "-c", "read -P 0 64k 64k",
                "-c", "aio_read -P 0 0 4k",
                "-c", "aio_read -v 128k 32",
                "-c", "aio_flush",
                server.Uri,
            ]);

            string output = result.StdOut;
            Assert.DoesNotContain("Pattern verification failed", output + result.StdErr, StringComparison.Ordinal);
            Assert.DoesNotContain("failed", result.StdErr, StringComparison.OrdinalIgnoreCase);
            // The hex dump of the first 512 bytes, line for line.
            Assert.Contains(HexDump(original.AsSpan(0, 512), 0), output, StringComparison.Ordinal);
            Assert.Contains("read 512/512 bytes at offset 0", output, StringComparison.Ordinal);
            Assert.Contains("wrote 65536/65536 bytes at offset 0", output, StringComparison.Ordinal);
            Assert.Contains("read 65536/65536 bytes at offset 0", output, StringComparison.Ordinal);
            Assert.Contains("discard 65536/65536 bytes at offset 65536", output, StringComparison.Ordinal);
            Assert.Contains("read 65536/65536 bytes at offset 65536", output, StringComparison.Ordinal);
            Assert.Contains("read 4096/4096 bytes at offset 0", output, StringComparison.Ordinal);
            // The asynchronous read beyond the changed range still shows the original bytes.
            Assert.Contains(HexDump(original.AsSpan(2 * K64, 32), 2 * K64), output, StringComparison.Ordinal);
            Assert.Contains("read 32/32 bytes at offset 131072", output, StringComparison.Ordinal);
            await server.AssertNoErrorsAsync();
            after = await DeviceContents.ReadAllAsync(device);
        }

        byte[] expected = (byte[])original.Clone();
        expected.AsSpan(0, 2 * K64).Clear();
        DeviceContents.AssertEqual(expected, after, "device after write -z 0 64k and discard 64k 64k");
        if (fileDevice)
        {
            byte[] file = await File.ReadAllBytesAsync(backing);
            DeviceContents.AssertEqual(expected, file, "backing file");
        }
    }

    /// <summary>qemu-io's <c>-v</c> format: offset, 16 hex bytes, then letters and digits (anything else as a dot).</summary>
    private static string HexDump(ReadOnlySpan<byte> data, long offset)
    {
        var text = new StringBuilder();
        for (int line = 0; line < data.Length; line += 16)
        {
            ReadOnlySpan<byte> bytes = data.Slice(line, Math.Min(16, data.Length - line));
            text.Append($"{offset + line:x8}:  ");
            foreach (byte b in bytes)
            {
                text.Append($"{b:x2} ");
            }
            text.Append(' ', 3 * (16 - bytes.Length)).Append(' ');
            foreach (byte b in bytes)
            {
                text.Append(char.IsAsciiLetterOrDigit((char)b) ? (char)b : '.'); // qemu-io shows only isalnum()
            }
            text.Append('\n');
        }
        return text.ToString();
    }
}
