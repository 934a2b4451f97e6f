using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>Two nbdsh clients connected at the same time, each writing and verifying its own region.</summary>
public sealed class ConcurrentClientsTests
{
    private const int RegionSize = 16 << 20;
    private const int Chunk = 64 << 10;

    [Theory(Timeout = 90_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task TwoNbdshClients_WritingDifferentRegions_BothSucceed(Transport transport, Engine engine)
    {
        using NbdfastProcess server = await transport.StartAsync(engine, "--memory", "64M", "--writable");
        await RunTwoClientsAsync(server);
    }

    /// <summary>Both connections on one io_uring reactor thread (where io_uring is available).</summary>
    [Fact(Timeout = 90_000)]
    public async Task TwoNbdshClients_OnOneReactorThread_BothSucceed()
    {
        using NbdfastProcess server = await Transport.Tcp.StartAsync(Engine.Auto, "--memory", "64M", "--writable", "--threads", "1");
        await RunTwoClientsAsync(server);
    }

    private static async Task RunTwoClientsAsync(NbdfastProcess server)
    {
        using var temp = new TempDirectory();

        Task<ToolResult> first = ExternalTool.RunAsync(
            "nbdsh", ["-u", server.Uri(), "-c", ClientScript(0, temp.Path)], TimeSpan.FromSeconds(60));
        Task<ToolResult> second = ExternalTool.RunAsync(
            "nbdsh", ["-u", server.Uri(), "-c", ClientScript(1, temp.Path)], TimeSpan.FromSeconds(60));
        ToolResult[] results = await Task.WhenAll(first, second);

        foreach (ToolResult result in results)
        {
            Assert.True(result.Succeeded, result.Describe() + "\n--- server ---\n" + server.Stderr);
            Assert.Contains("verified", result.Stdout, StringComparison.Ordinal);
        }

        // A third connection sees both regions.
        ToolResult check = await ExternalTool.RunAsync("nbdsh", ["-u", server.Uri(), "-c", CheckScript()], TimeSpan.FromSeconds(60));
        Assert.True(check.Succeeded, check.Describe());
        Assert.Equal(0, await server.StopAsync());
    }

    /// <summary>Client N waits until the other is connected too, then fills region N chunk by chunk and reads it back.</summary>
    private static string ClientScript(int me, string barrierDirectory) => $$"""
        import os, sys, time
        me, other, region, chunk, barrier = {{me}}, {{1 - me}}, {{RegionSize}}, {{Chunk}}, "{{barrierDirectory}}"
        open(os.path.join(barrier, f"ready{me}"), "w").close()
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(barrier, f"ready{other}")):
            if time.monotonic() > deadline:
                sys.exit(f"client {me}: the other client never connected")
            time.sleep(0.01)
        base = me * region
        def pattern(i):
            return bytes([(me * 128 + i) % 256]) * chunk
        for i in range(region // chunk):
            h.pwrite(pattern(i), base + i * chunk)
        h.flush()
        for i in range(region // chunk):
            if h.pread(chunk, base + i * chunk) != pattern(i):
                sys.exit(f"client {me}: chunk {i} differs")
        print(f"client {me} verified")
        """;

    private static string CheckScript() => $$"""
        import sys
        region, chunk = {{RegionSize}}, {{Chunk}}
        for me in (0, 1):
            for i in range(region // chunk):
                if h.pread(chunk, me * region + i * chunk) != bytes([(me * 128 + i) % 256]) * chunk:
                    sys.exit(f"region {me} chunk {i} differs")
        if h.pread(chunk, 2 * region) != bytes(chunk):
            sys.exit("the unwritten region is not zero")
        print("both regions verified")
        """;
}
