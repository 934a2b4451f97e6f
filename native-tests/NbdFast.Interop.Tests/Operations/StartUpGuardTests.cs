using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>Start-up mistakes that must not hurt a running server or fail later at run time.</summary>
public sealed class StartUpGuardTests
{
    [Fact(Timeout = 60_000)]
    public async Task SecondServerOnALiveUnixSocket_ExitsTwo_AndTheFirstKeepsServing()
    {
        using NbdfastProcess first = await Transport.Unix.StartAsync("--memory", "1M");

        ToolResult second = await ExternalTool.RunAsync(NbdfastBinary.Path, ["--memory", "1M", "-U", first.SocketPath!], TimeSpan.FromSeconds(15));

        CliTests.AssertUsageError(second);
        Assert.Contains("in use", second.Stderr, StringComparison.Ordinal);
        ToolResult info = await ExternalTool.RunAsync("nbdinfo", ["--size", first.Uri()], TimeSpan.FromSeconds(15));
        Assert.True(info.Succeeded, info.Describe());
    }

    [Theory(Timeout = 30_000)]
    [InlineData("--idle-timeout")]
    [InlineData("--handshake-timeout")]
    [InlineData("--shutdown-timeout")]
    public async Task TimeoutsLongerThanTimersTake_AreUsageErrors(string option)
    {
        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, ["--memory", "1M", option, "3000000"], TimeSpan.FromSeconds(10));

        CliTests.AssertUsageError(run);
    }
}
