using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>nbdsh one-liners (libnbd's Python shell) against the library on a real socket.</summary>
public sealed class NbdshTests
{
    private const int TestTimeout = 120_000;

    [Fact(Timeout = TestTimeout)]
    public async Task GetSize_PrintsExportSize()
    {
        var device = new MemoryDevice(7 * 1024 * 1024 + 1);
        await using var server = InProcessServer.Start(device);

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdsh", ["-u", server.Uri, "-c", "print(h.get_size())"]);

        Assert.Equal("7340033", result.StdOut.Trim());
        await server.AssertNoErrorsAsync();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task ReadOnlyFlagAndRead_MatchDevice()
    {
        var device = new MemoryDevice(1024 * 1024);
        await device.WriteAsync(4096, "hello, nbd"u8.ToArray(), WriteFlags.None);
        await using var server = InProcessServer.Start(device, unixSocket: true);

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdsh",
            ["-u", server.Uri, "-c", "print(h.is_read_only())", "-c", "print(h.pread(10, 4096).decode())", "-c", "print(h.pread(4, 0).hex())"]);

        Assert.Equal(["True", "hello, nbd", "00000000"], result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        await server.AssertNoErrorsAsync();
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task WriteThenRead_ChangesDevice(Transport transport)
    {
        var device = new MemoryDevice(1024 * 1024);
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdsh",
            ["-u", server.Uri, "-c", "h.pwrite(b'written by nbdsh', 100000)", "-c", "h.flush()", "-c", "print(h.pread(16, 100000).decode())"]);

        Assert.Equal("written by nbdsh", result.StdOut.Trim());
        await server.AssertNoErrorsAsync();
        byte[] contents = new byte[16];
        await device.ReadAsync(100000, contents);
        Assert.Equal("written by nbdsh"u8.ToArray(), contents);
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task BaseAllocation_ReportsHoleThenData(Transport transport)
    {
        var device = new MemoryDevice(1024 * 1024);
        await device.WriteAsync(512 * 1024, new byte[64 * 1024].Select(_ => (byte)1).ToArray(), WriteFlags.None);
        await using var server = InProcessServer.Start(device, transport: transport);
        const string Command = """
            e = []
            h.block_status(1024 * 1024, 0, lambda ctx, off, ents, err: e.extend(ents) or 0)
            print(e)
            """;

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdsh", ["--base-allocation", "-u", server.Uri, "-c", Command]);

        // (length, flags) pairs: a hole that reads as zeroes (3), 64 KiB of data (0), then a hole again.
        Assert.Equal("[524288, 3, 65536, 0, 458752, 3]", result.StdOut.Trim());
        await server.AssertNoErrorsAsync();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task OptMode_ListsOfferedExports()
    {
        var device = new MemoryDevice(1024 * 1024);
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Offer = ["first", "second"],
            Resolver = (name, _) => ValueTask.FromResult(name is "first" or "second" ? new NbdExport(device, Description: name + " export") : null),
        });

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdsh",
            ["--opt-mode", "-u", server.Uri, "-c", "h.opt_list(lambda n, d: print(n + ':' + d) or 0)", "-c", "h.opt_abort()"]);

        Assert.Equal(["first:first export", "second:second export"], result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        ServerConnection connection = Assert.Single(await server.AssertNoErrorsAsync(typeof(ClientRequestedAbortException)));
        Assert.IsType<ClientRequestedAbortException>(connection.Error);
    }
}
