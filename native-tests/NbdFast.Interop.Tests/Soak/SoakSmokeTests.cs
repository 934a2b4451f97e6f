using System.Globalization;
using System.Text.RegularExpressions;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Soak;

/// <summary>
/// A short run of the soak (bench/soak.sh, also `./build.sh soak MINUTES`): fio randrw with crc32c verify over
/// 4 connections plus a client dropping connections at random, against the published binary. The script
/// judges itself; this test also reads its printed figures, so a soak that did nothing cannot pass.
/// </summary>
public sealed partial class SoakSmokeTests
{
    private const string Minutes = "0.25";   // 15 s of load

    [Fact(Timeout = 180_000)]
    public async Task Soak_ShortRun_VerifiesCleanlyAndStaysFlat()
    {
        string script = Path.Combine(RepositoryRoot.Path, "bench", "soak.sh");

        ToolResult run = await ExternalTool.RunAsync("/usr/bin/env",
            [$"NBDFAST={NbdfastBinary.Path}", "bash", script, Minutes], TimeSpan.FromSeconds(150));

        Assert.True(run.Succeeded, run.Describe());
        Assert.Contains("soak: PASS", run.Stdout, StringComparison.Ordinal);

        Match fio = FioLine().Match(run.Stdout);
        Assert.True(fio.Success, run.Describe());
        Assert.True(Number(fio, "ios") > 0, fio.Value);
        Assert.True(Number(fio, "writes") > 0, fio.Value);
        Assert.Equal(0, Number(fio, "verify"));
        Assert.Equal(4, Number(fio, "connections"));

        Match dropper = DropperLine().Match(run.Stdout);
        Assert.True(dropper.Success, run.Describe());
        Assert.Equal(0, Number(dropper, "errors"));
        Assert.True(Number(dropper, "mid") > 0 && Number(dropper, "after") > 0 && Number(dropper, "request") > 0, dropper.Value);

        Match fds = FdLine().Match(run.Stdout);
        Assert.True(fds.Success, run.Describe());
        Assert.True(Number(fds, "idle") <= Number(fds, "before"), fds.Value);
        Assert.Matches(@"soak: RSS MiB: start \d+, middle \d+, end \d+, peak \d+", run.Stdout);
    }

    private static long Number(Match match, string group) =>
        long.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"soak: fio: (?<ios>\d+) I/Os done \(read \d+, write (?<writes>\d+)\) over (?<connections>\d+) connections; verify errors (?<verify>\d+)")]
    private static partial Regex FioLine();

    [GeneratedRegex(@"dropper: \d+ connections \(mid-handshake (?<mid>\d+), after handshake (?<after>\d+), mid-request (?<request>\d+)\) errors (?<errors>\d+)")]
    private static partial Regex DropperLine();

    [GeneratedRegex(@"soak: fds: before clients (?<before>\d+), start \d+, middle \d+, end \d+, peak \d+, idle after (?<idle>\d+)")]
    private static partial Regex FdLine();
}
