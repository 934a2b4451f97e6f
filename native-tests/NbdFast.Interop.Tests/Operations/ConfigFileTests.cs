using System.Text.Json;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// --config FILE: the exports it lists are served; SIGHUP re-reads it (new exports appear, removed ones refuse
/// new clients but keep serving the connected ones until they leave, changed ones are replaced, a broken file
/// keeps the old set); mistakes in the file at start are a one-line usage error.
/// </summary>
public sealed class ConfigFileTests
{
    private const int TestTimeout = 60_000;

    private static async Task<string> ListAsync(NbdfastProcess server)
    {
        ToolResult list = await ExternalTool.RunAsync("nbdinfo", ["--json", "--list", Clients.Tcp(server.Port!.Value)], Clients.ToolTimeout);
        Assert.True(list.Succeeded, list.Describe() + "\n--- server ---\n" + server.Stderr);
        return list.Stdout;
    }

    private static Dictionary<string, long> Sizes(string listJson)
    {
        using JsonDocument document = JsonDocument.Parse(listJson);
        return document.RootElement.GetProperty("exports").EnumerateArray()
            .ToDictionary(e => e.GetProperty("export-name").GetString()!, e => e.GetProperty("export-size").GetInt64());
    }

    /// <summary>Reloads and waits for the log line that says the reload is done (the Nth such line).</summary>
    private static async Task ReloadAsync(NbdfastProcess server, string expectedLine, int occurrence = 1)
    {
        Signals.Send(server.Pid, Signals.SigHup);
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (server.CountStderrLines(expectedLine) < occurrence)
        {
            Assert.True(DateTime.UtcNow < deadline, $"no '{expectedLine}' line after SIGHUP\n--- server ---\n{server.Stderr}");
            Assert.False(server.HasExited, "nbdfast exited on SIGHUP\n" + server.Stderr);
            await Task.Delay(20);
        }
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Sighup_AddsRemovesAndReplacesExports_AndAConnectedClientOfARemovedExportCarriesOn()
    {
        using var temp = new TempDirectory();
        byte[] disk = temp.WriteRandom("disk.img", 1 << 20, seed: 3);
        string config = temp.File("exports.json");
        File.WriteAllText(config, $$"""
            // comments and trailing commas are fine
            { "exports": [
                { "name": "keep", "path": "{{temp.File("disk.img")}}", "description": "unchanged" },
                { "name": "gone", "memory": "4M", "writable": true },
                { "name": "changed", "memory": 1048576, },
            ] }
            """);
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("-v", "--config", config);
        int port = server.Port!.Value;
        Assert.Equal(new Dictionary<string, long> { ["keep"] = 1 << 20, ["gone"] = 4 << 20, ["changed"] = 1 << 20 }, Sizes(await ListAsync(server)));
        Assert.Equal(disk[..4096], await Clients.FirstBlockAsync(Clients.Tcp(port, "keep")));

        using HeldClient holder = await HeldClient.ConnectAsync(Clients.Tcp(port, "gone"), temp.Path, "G");
        File.WriteAllText(config, """
            { "exports": [
                { "name": "keep", "path": "DISK", "description": "unchanged" },
                { "name": "changed", "memory": "3M" },
                { "name": "new", "memory": "2M", "description": "added by reload" }
            ] }
            """.Replace("DISK", temp.File("disk.img"), StringComparison.Ordinal));
        await ReloadAsync(server, "reloaded");

        Assert.Contains("2 added, 2 removed, 1 unchanged", server.Stderr, StringComparison.Ordinal);
        Assert.Equal(new Dictionary<string, long> { ["keep"] = 1 << 20, ["changed"] = 3 << 20, ["new"] = 2 << 20 }, Sizes(await ListAsync(server)));
        ToolResult info = await ExternalTool.RunAsync("nbdinfo", ["--json", Clients.Tcp(port, "new")], Clients.ToolTimeout);
        Assert.True(info.Succeeded, info.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Contains("added by reload", info.Stdout, StringComparison.Ordinal);
        await Clients.AssertRefusedAsync(Clients.Tcp(port, "gone"), server);

        // The client that was on "gone" before the reload still writes and reads it, then leaves.
        ToolResult held = await holder.ReleaseAsync();
        Assert.True(held.Succeeded, held.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Contains("done", held.Stdout, StringComparison.Ordinal);
        await server.WaitForStderrAsync("export 'gone' removed; its last client has left", TimeSpan.FromSeconds(15));
        await Clients.AssertRefusedAsync(Clients.Tcp(port, "gone"), server);
        Assert.Equal(disk[..4096], await Clients.FirstBlockAsync(Clients.Tcp(port, "keep")));
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Sighup_WithABrokenFile_KeepsTheCurrentExports()
    {
        using var temp = new TempDirectory();
        string config = temp.File("exports.json");
        File.WriteAllText(config, """{ "exports": [ { "name": "first", "memory": "1M" } ] }""");
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--config", config);
        int port = server.Port!.Value;

        string[] broken =
        [
            """{ "exports": [ { "name": "first", "memory": "1M" """,                                  // truncated JSON
            """{ "exports": [ { "name": "first", "memory": "1M", "colour": "red" } ] }""",           // unknown field
            """{ "exports": [ { "name": "x", "memory": "1M" }, { "name": "x", "memory": "2M" } ] }""", // duplicate name
            """{ "exports": [ { "name": "first", "path": "/nonexistent/disk.img" } ] }""",          // missing file
        ];
        for (int i = 0; i < broken.Length; i++)
        {
            File.WriteAllText(config, broken[i]);
            await ReloadAsync(server, "reload of", occurrence: i + 1);
            Assert.Equal(new Dictionary<string, long> { ["first"] = 1 << 20 }, Sizes(await ListAsync(server)));
            await Clients.AssertServedAsync(Clients.Tcp(port, "first"), server);
        }
        Assert.Equal(broken.Length, server.CountStderrLines("keeping the current exports"));
        Assert.DoesNotContain("reloaded", server.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Sighup_WithoutConfig_IsLoggedAndChangesNothing()
    {
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--memory", "1M");

        Signals.Send(server.Pid, Signals.SigHup);
        await server.WaitForStderrAsync("SIGHUP ignored", TimeSpan.FromSeconds(15));

        await Clients.AssertServedAsync(Clients.Tcp(server.Port!.Value), server);
        Assert.Equal(0, await server.StopAsync());
    }

    /// <summary>A mistake, the file, and a piece of the one line that must explain it.</summary>
    public static TheoryData<string, string, string> BadConfigs => new()
    {
        { "broken json", """{ "exports": [ """, "exports.json" },
        { "empty file", "", "exports.json" },
        { "unknown field", """{ "exports": [ { "name": "a", "memory": "1M", "writeable": true } ] }""", "writeable" },
        { "unknown top-level field", """{ "exports": [ { "name": "a", "memory": "1M" } ], "listen": "::" }""", "listen" },
        { "duplicate name", """{ "exports": [ { "name": "a", "memory": "1M" }, { "name": "a", "memory": "1M" } ] }""", "defined twice" },
        { "no exports", """{ "exports": [] }""", "no exports" },
        { "no name", """{ "exports": [ { "memory": "1M" } ] }""", "name" },
        { "path and memory", """{ "exports": [ { "name": "a", "memory": "1M", "path": "/etc/hostname" } ] }""", "export 'a'" },
        { "bad size", """{ "exports": [ { "name": "a", "memory": "lots" } ] }""", "memory" },
        { "zero memory", """{ "exports": [ { "name": "a", "memory": 0 } ] }""", "export 'a'" },
        { "wrong type", """{ "exports": [ { "name": "a", "memory": "1M", "writable": "yes" } ] }""", "writable" },
        { "zero max connections", """{ "exports": [ { "name": "a", "memory": "1M", "maxConnections": 0 } ] }""", "maxConnections" },
        { "missing file", """{ "exports": [ { "name": "a", "path": "/nonexistent/disk.img" } ] }""", "/nonexistent/disk.img" },
        { "not an object", "[ 1, 2, 3 ]", "exports.json" },
    };

    [Theory(Timeout = 30_000)]
    [MemberData(nameof(BadConfigs))]
    public async Task BadConfigAtStart_ExitsTwoWithOneLine(string mistake, string json, string explanation)
    {
        using var temp = new TempDirectory();
        string config = temp.File("exports.json");
        File.WriteAllText(config, json);

        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, ["--config", config, "-b", "127.0.0.1", "-p", "0"], TimeSpan.FromSeconds(15));

        CliTests.AssertUsageError(run);
        Assert.True(run.Stderr.Contains(explanation, StringComparison.Ordinal), $"{mistake}: the message does not mention '{explanation}'\n{run.Describe()}");
    }
}
