using System.Text.Json;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>nbdinfo against a RAM disk over TCP and a unix socket: size, read-only flag, export listing.</summary>
public sealed class NbdinfoTests
{
    private const long Size = 64L << 20;

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task Json_ReportsSizeAndIsReadOnlyByDefault(Transport transport, Engine engine)
    {
        using NbdfastProcess server = await transport.StartAsync(engine, "--memory", "64M");

        JsonElement export = await InfoAsync(server.Uri());

        Assert.Equal(Size, export.GetProperty("export-size").GetInt64());
        Assert.True(export.GetProperty("is_read_only").GetBoolean());
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task Json_WritableExportIsNotReadOnly(Transport transport, Engine engine)
    {
        using NbdfastProcess server = await transport.StartAsync(engine, "--memory", "64M", "--writable");

        JsonElement export = await InfoAsync(server.Uri());

        Assert.Equal(Size, export.GetProperty("export-size").GetInt64());
        Assert.False(export.GetProperty("is_read_only").GetBoolean());
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory(Timeout = 60_000)]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.Unix)]
    public async Task List_ShowsExportNameAndDescription(Transport transport)
    {
        using NbdfastProcess server = await transport.StartAsync(
            "--memory", "64M", "-e", "disk-one", "-D", "a test disk for nbdinfo");

        ToolResult list = await ExternalTool.RunAsync("nbdinfo", "--list", server.Uri());

        Assert.True(list.Succeeded, list.Describe());
        Assert.Contains("export=\"disk-one\"", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("description: a test disk for nbdinfo", list.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory(Timeout = 60_000)]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.Unix)]
    public async Task NoList_MakesListFailButTheExportStillWorks(Transport transport)
    {
        using NbdfastProcess server = await transport.StartAsync("--memory", "64M", "--no-list");

        ToolResult list = await ExternalTool.RunAsync("nbdinfo", "--list", server.Uri());
        Assert.False(list.Succeeded, list.Describe());
        Assert.False(list.TimedOut, list.Describe());

        JsonElement export = await InfoAsync(server.Uri());
        Assert.Equal(Size, export.GetProperty("export-size").GetInt64());
        Assert.Equal(0, await server.StopAsync());
    }

    private static async Task<JsonElement> InfoAsync(string uri)
    {
        ToolResult info = await ExternalTool.RunAsync("nbdinfo", "--json", uri);
        Assert.True(info.Succeeded, info.Describe());
        using JsonDocument document = JsonDocument.Parse(info.Stdout);
        JsonElement exports = document.RootElement.GetProperty("exports");
        Assert.Equal(1, exports.GetArrayLength());
        return exports[0].Clone();
    }
}
