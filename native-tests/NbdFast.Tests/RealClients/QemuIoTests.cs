using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>qemu-io against the library on a real socket.</summary>
public sealed class QemuIoTests
{
    private const int TestTimeout = 120_000;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.BothOnTcpAndUnix), MemberType = typeof(Transports))]
    public async Task WritePattern_ReadsBackAndLandsOnDevice(Transport transport, bool unixSocket)
    {
        var device = new MemoryDevice(4 * 1024 * 1024);
        await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: unixSocket, transport: transport);

        ToolResult result = await ExternalTool.RunCheckedAsync("qemu-io",
            ["-f", "raw", "-c", "write -P 0xab 0 64k", "-c", "read -P 0xab 0 64k", "-c", "flush", server.Uri]);

        Assert.Contains("wrote 65536/65536 bytes at offset 0", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("read 65536/65536 bytes at offset 0", result.StdOut, StringComparison.Ordinal);
        await server.AssertNoErrorsAsync();
        byte[] contents = new byte[128 * 1024];
        await device.ReadAsync(0, contents);
        Assert.All(contents.AsSpan(0, 64 * 1024).ToArray(), b => Assert.Equal(0xab, b));
        Assert.All(contents.AsSpan(64 * 1024).ToArray(), b => Assert.Equal(0, b));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task WrongPattern_FailsVerification()
    {
        var device = new MemoryDevice(1024 * 1024);
        await device.WriteAsync(0, Enumerable.Repeat((byte)0xab, 4096).ToArray(), WriteFlags.None);
        await using var server = InProcessServer.Start(device);

        ToolResult result = await ExternalTool.RunAsync("qemu-io", ["-r", "-f", "raw", "-c", "read -P 0xcd 0 4k", server.Uri]);

        Assert.Contains("Pattern verification failed", result.StdOut + result.StdErr, StringComparison.Ordinal);
        await server.AssertNoErrorsAsync();
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task ZeroesDiscardAndUnalignedWrites_ReadBack(Transport transport)
    {
        var device = new MemoryDevice(4 * 1024 * 1024);
        await DeviceContents.FillRandomAsync(device, seed: 1);
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

        ToolResult result = await ExternalTool.RunCheckedAsync("qemu-io",
        [
            "-f", "raw",
            "-c", "write -z 0 1M", "-c", "read -P 0 0 1M",
            "-c", "write -z -u 1M 1M", "-c", "read -P 0 1M 1M",
            "-c", "write -P 0x11 3 5", "-c", "read -P 0x11 3 5", "-c", "read -P 0 0 3", "-c", "read -P 0 8 100",
            "-c", "aio_write -P 0x22 2M 64k", "-c", "aio_write -P 0x33 3M 64k", "-c", "aio_flush",
            "-c", "read -P 0x22 2M 64k", "-c", "read -P 0x33 3M 64k",
            "-c", "discard 3M 64k", "-c", "write -P 0x44 3M 64k", "-c", "read -P 0x44 3M 64k",
            server.Uri,
        ]);

        Assert.DoesNotContain("Pattern verification failed", result.StdOut + result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("failed", result.StdErr, StringComparison.OrdinalIgnoreCase);
        await server.AssertNoErrorsAsync();
        byte[] contents = await DeviceContents.ReadAllAsync(device);
        Assert.All(contents.AsSpan(0, 3).ToArray(), b => Assert.Equal(0, b));
        Assert.All(contents.AsSpan(3, 5).ToArray(), b => Assert.Equal(0x11, b));
        Assert.All(contents.AsSpan(8, 2 * 1024 * 1024 - 8).ToArray(), b => Assert.Equal(0, b));
        Assert.All(contents.AsSpan(2 * 1024 * 1024, 64 * 1024).ToArray(), b => Assert.Equal(0x22, b));
        Assert.All(contents.AsSpan(3 * 1024 * 1024, 64 * 1024).ToArray(), b => Assert.Equal(0x44, b));
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task ReadOnlyExport_ReadsButWriteFails(Transport transport)
    {
        var device = new MemoryDevice(1024 * 1024);
        await device.WriteAsync(0, Enumerable.Repeat((byte)0x5c, 64 * 1024).ToArray(), WriteFlags.None);
        await using var server = InProcessServer.Start(device, readOnly: true, transport: transport);

        await ExternalTool.RunCheckedAsync("qemu-io", ["-r", "-f", "raw", "-c", "read -P 0x5c 0 64k", server.Uri]);
        ToolResult readWrite = await ExternalTool.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0xab 0 64k", server.Uri]);
        ToolResult explicitReadOnly = await ExternalTool.RunAsync("qemu-io", ["-r", "-f", "raw", "-c", "write -P 0xab 0 64k", server.Uri]);

        readWrite.EnsureFailure();
        explicitReadOnly.EnsureFailure();
        Assert.Contains("read-only", explicitReadOnly.StdOut + explicitReadOnly.StdErr, StringComparison.Ordinal);
        await server.AssertNoErrorsAsync();
        byte[] contents = new byte[64 * 1024];
        await device.ReadAsync(0, contents);
        Assert.All(contents, b => Assert.Equal(0x5c, b));
    }
}
