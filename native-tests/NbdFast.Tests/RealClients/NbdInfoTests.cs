using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>nbdinfo (libnbd) against the library hosted on a real socket.</summary>
public sealed class NbdInfoTests
{
    private const int TestTimeout = 120_000;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Json_ReadOnlyByDefault_ReportsSizeAndFlags(Transport transport)
    {
        var device = new MemoryDevice(3 * 1024 * 1024 + 512);
        await using var server = InProcessServer.Start(device, exportName: "disk", transport: transport);

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdinfo", ["--json", server.Uri]);

        JsonElement export = SingleExport(result);
        Assert.Equal(device.Size, export.GetProperty("export-size").GetInt64());
        Assert.Equal("disk", export.GetProperty("export-name").GetString());
        Assert.True(export.GetProperty("is_read_only").GetBoolean());
        Assert.True(export.GetProperty("can_flush").GetBoolean());
        Assert.True(export.GetProperty("can_fua").GetBoolean());
        Assert.True(export.GetProperty("can_cache").GetBoolean());
        Assert.True(export.GetProperty("can_multi_conn").GetBoolean());
        Assert.False(export.GetProperty("is_rotational").GetBoolean());
        // Write-type commands are not advertised on a read-only export.
        Assert.False(export.GetProperty("can_trim").GetBoolean());
        Assert.False(export.GetProperty("can_zero").GetBoolean());
        Assert.False(export.GetProperty("can_fast_zero").GetBoolean());
        Assert.True(export.GetProperty("can_df").GetBoolean());
        using JsonDocument document = JsonDocument.Parse(result.StdOut);
        Assert.Equal("newstyle-fixed", document.RootElement.GetProperty("protocol").GetString());
        Assert.True(document.RootElement.GetProperty("structured").GetBoolean());

        IReadOnlyList<ServerConnection> connections = await server.AssertNoErrorsAsync();
        Assert.Contains(connections, c => c.ExportName == "disk");
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Json_WritableExport_AdvertisesWriteCommands(Transport transport)
    {
        var device = new MemoryDevice(1024 * 1024);
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdinfo", ["--json", server.Uri]);

        JsonElement export = SingleExport(result);
        Assert.Equal(device.Size, export.GetProperty("export-size").GetInt64());
        Assert.False(export.GetProperty("is_read_only").GetBoolean());
        Assert.True(export.GetProperty("can_flush").GetBoolean());
        Assert.True(export.GetProperty("can_trim").GetBoolean());
        Assert.True(export.GetProperty("can_zero").GetBoolean());
        Assert.True(export.GetProperty("can_fast_zero").GetBoolean());
        await server.AssertNoErrorsAsync();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Json_ResolvedExport_ReportsDescriptionAndBlockSizes()
    {
        var device = new MemoryDevice(8 * 1024 * 1024);
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Resolver = (name, _) => ValueTask.FromResult(name == "vol" ? new NbdExport(device, ReadOnly: false, "the volume") : null),
            ExportName = "vol",
            UnixSocket = true,
        });

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdinfo", ["--json", server.Uri]);

        JsonElement export = SingleExport(result);
        Assert.Equal("the volume", export.GetProperty("description").GetString());
        Assert.Equal(device.Size, export.GetProperty("export-size").GetInt64());
        Assert.False(export.GetProperty("is_read_only").GetBoolean());
        Assert.Equal(1, export.GetProperty("block_size_minimum").GetInt64());
        Assert.Equal(4096, export.GetProperty("block_size_preferred").GetInt64());
        Assert.Equal(32 * 1024 * 1024, export.GetProperty("block_size_maximum").GetInt64());
        // With a resolver, NBD_OPT_INFO succeeds and nbdinfo goes on to list the meta contexts.
        Assert.Equal(["base:allocation"], export.GetProperty("contexts").EnumerateArray().Select(c => c.GetString()));
        await server.AssertNoErrorsAsync();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Size_PrintsExportSize()
    {
        var device = new MemoryDevice(5L * 1024 * 1024 * 1024 + 3);
        await using var server = InProcessServer.Start(device);

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdinfo", ["--size", server.Uri]);

        Assert.Equal(device.Size.ToString(System.Globalization.CultureInfo.InvariantCulture), result.StdOut.Trim());
        await server.AssertNoErrorsAsync();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task List_WithOfferAndResolver_ShowsBothExportsWithDescriptions()
    {
        var first = new MemoryDevice(1024 * 1024);
        var second = new MemoryDevice(2 * 1024 * 1024);
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Offer = ["alpha", "beta"],
            Resolver = (name, _) => ValueTask.FromResult(name switch
            {
                "alpha" => new NbdExport(first, Description: "first disk"),
                "beta" => new NbdExport(second, ReadOnly: false, Description: "second disk"),
                _ => null,
            }),
        });

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdinfo", ["--list", "--json", server.Uri]);

        using JsonDocument document = JsonDocument.Parse(result.StdOut);
        var exports = document.RootElement.GetProperty("exports").EnumerateArray()
            .ToDictionary(e => e.GetProperty("export-name").GetString()!, e => e.Clone());
        Assert.Equal(["alpha", "beta"], exports.Keys.Order());
        Assert.Equal("first disk", exports["alpha"].GetProperty("description").GetString());
        Assert.Equal("second disk", exports["beta"].GetProperty("description").GetString());
        Assert.Equal(first.Size, exports["alpha"].GetProperty("export-size").GetInt64());
        Assert.Equal(second.Size, exports["beta"].GetProperty("export-size").GetInt64());
        Assert.True(exports["alpha"].GetProperty("is_read_only").GetBoolean());
        Assert.False(exports["beta"].GetProperty("is_read_only").GetBoolean());

        // The human-readable listing shows the same.
        ToolResult text = await ExternalTool.RunCheckedAsync("nbdinfo", ["--list", server.Uri]);
        Assert.Contains("export=\"alpha\"", text.StdOut, StringComparison.Ordinal);
        Assert.Contains("export=\"beta\"", text.StdOut, StringComparison.Ordinal);
        Assert.Contains("description: first disk", text.StdOut, StringComparison.Ordinal);
        Assert.Contains("description: second disk", text.StdOut, StringComparison.Ordinal);

        // nbdinfo ends its option-mode connections with NBD_OPT_ABORT.
        await server.AssertNoErrorsAsync(typeof(ClientRequestedAbortException));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task List_WithoutOffer_FailsBecauseListIsRefused()
    {
        var device = new MemoryDevice(1024 * 1024);
        await using var server = InProcessServer.Start(new InProcessServerOptions { Offer = null, Device = device });

        ToolResult result = await ExternalTool.RunAsync("nbdinfo", ["--list", server.Uri]);

        result.EnsureFailure();
        Assert.DoesNotContain("export=", result.StdOut, StringComparison.Ordinal);
        await server.WaitForIdleAsync();
        Assert.All(server.Connections, c => Assert.False(c.Negotiated, server.Describe()));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Json_NonAsciiExportNameAndLongDescription_RoundTrip()
    {
        const string Name = "disks/ünïcode name ✓";
        // Within the spec's 4096-byte string limit: 3000 bytes of ASCII, then 3-byte characters up to 4095 bytes.
        string description = new string('d', 3000) + new string('✓', 365);
        Assert.Equal(4095, System.Text.Encoding.UTF8.GetByteCount(description));
        var device = new MemoryDevice(1024 * 1024);
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Resolver = (name, _) => ValueTask.FromResult(name == Name ? new NbdExport(device, Description: description) : null),
            ExportName = Name,
        });

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdinfo", ["--json", server.Uri]);

        JsonElement export = SingleExport(result);
        Assert.Equal(Name, export.GetProperty("export-name").GetString());
        string? shown = export.GetProperty("description").GetString();
        Assert.True(shown == description, $"description of {description.Length} chars came back as {shown?.Length} chars");
        Assert.Equal(Name, Assert.Single(await server.AssertNoErrorsAsync()).ExportName);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task List_DescriptionWithSupplementaryCharacter_RoundTrips()
    {
        // 1368 bytes of UTF-8, far below the 4096-byte limit; the emoji is a surrogate pair at chars 1364-1365.
        string description = new string('d', 1364) + "\U0001F600";
        var device = new MemoryDevice(1024 * 1024);
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Offer = ["e"],
            Resolver = (name, _) => ValueTask.FromResult(name == "e" ? new NbdExport(device, Description: description) : null),
        });

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdinfo", ["--list", "--json", server.Uri]);

        JsonElement export = SingleExport(result);
        string? shown = export.GetProperty("description").GetString();
        Assert.True(shown == description,
            $"description came back as {shown?.Length} chars ending in U+{(shown is { Length: > 0 } ? (int)shown[^1] : 0):X4}");
        await server.AssertNoErrorsAsync(typeof(ClientRequestedAbortException));
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Map_ReportsHolesAndData(Transport transport)
    {
        var device = new MemoryDevice(4 * 1024 * 1024);
        await device.WriteAsync(1024 * 1024, new byte[] { 1 }, WriteFlags.None);            // one 64 KiB chunk
        await device.WriteAsync(3 * 1024 * 1024, new byte[128 * 1024], WriteFlags.None);      // two chunks, written with zeroes
        await using var server = InProcessServer.Start(device, transport: transport);

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdinfo", ["--map", "--json", server.Uri]);

        using JsonDocument document = JsonDocument.Parse(result.StdOut);
        string[] extents = [.. document.RootElement.EnumerateArray().Select(e =>
            $"{e.GetProperty("offset").GetInt64()}+{e.GetProperty("length").GetInt64()}:{e.GetProperty("type").GetInt32()}")];
        Assert.Equal(
            ["0+1048576:3", "1048576+65536:0", "1114112+2031616:3", "3145728+131072:0", "3276800+917504:3"],
            extents);
        await server.AssertNoErrorsAsync();
    }

    private static JsonElement SingleExport(ToolResult result)
    {
        using JsonDocument document = JsonDocument.Parse(result.StdOut);
        JsonElement[] exports = [.. document.RootElement.GetProperty("exports").EnumerateArray()];
        Assert.True(exports.Length == 1, result.Describe());
        return exports[0].Clone();
    }
}
