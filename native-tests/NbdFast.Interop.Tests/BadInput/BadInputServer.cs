using System.Globalization;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.BadInput;

/// <summary>What the server under attack exports.</summary>
public enum ExportKind
{
    /// <summary><c>--memory 64M --writable</c>.</summary>
    Memory,

    /// <summary>A sparse 64 MiB file in a temp directory, <c>--writable</c>.</summary>
    File,
}

/// <summary>
/// A published nbdfast serving a writable 64 MiB export on TCP, with a well-behaved client connected for its
/// whole life, and a baseline of the server's fds and RSS taken once it has warmed up. After every bad-input
/// case <see cref="AssertHealthyAsync"/> checks reliability.md §(b)'s invariants: the process is alive, the
/// well-behaved client's I/O (on its long-lived connection and a fresh one) is correct, fds and RSS are back
/// near the baseline, and nothing unexpected was logged.
/// </summary>
public sealed class BadInputServer : IAsyncDisposable
{
    public const long ExportSize = 64L << 20;

    /// <summary>The well-behaved client's region; bad-input cases stay out of it.</summary>
    public const long CompanionOffset = 0;
    public const int CompanionSize = 256 << 10;

    /// <summary>Where cases may write: everything past the first MiB.</summary>
    public const ulong ScratchOffset = 1 << 20;

    /// <summary>Fds a case may leave behind transiently (none are expected to stay).</summary>
    public const int FdSlack = 2;

    /// <summary>
    /// RSS above the baseline that a case may leave or, while it runs, reach. The warm-up fills the buffer pools
    /// with maximal buffers, but on the socket transport a maximal READ rents a 64 MiB array from
    /// ArrayPool.Shared (32 MiB plus the reply header rounds up to the next power of two), and that pool keeps
    /// arrays per core and per thread, so a few more may stay pooled (retained, not leaked: the RSS plateaus).
    /// A leak per connection (2000 in one case) or per attacker-declared byte shows up far beyond this.
    /// </summary>
    public const long RssSlack = 160L << 20;

    public static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(20);

    private readonly TempDirectory? _files;
    private int _stderrChecked;

    private BadInputServer(Engine engine, ExportKind export, NbdfastProcess process, CompanionClient companion, TempDirectory? files)
    {
        Engine = engine;
        Export = export;
        Process = process;
        Companion = companion;
        _files = files;
    }

    public Engine Engine { get; }
    public ExportKind Export { get; }
    public NbdfastProcess Process { get; }
    public CompanionClient Companion { get; }
    public ProcessUsage Baseline { get; private set; }

    public static async Task<BadInputServer> StartAsync(Engine engine, ExportKind export)
    {
        TempDirectory? files = null;
        string[] what = ["--memory", "64M"];
        if (export == ExportKind.File)
        {
            files = new TempDirectory();
            string path = files.File("disk.img");
            using (var image = new FileStream(path, FileMode.CreateNew))
            {
                image.SetLength(ExportSize);
            }
            what = [path];
        }
        NbdfastProcess? process = null;
        CompanionClient? companion = null;
        try
        {
            // The connection storms here run 16 handshakes at once beside the companion; the default
            // --max-handshakes of 16 would (rightly) refuse some, which is the limits' test, not this one's.
            process = await Transport.Tcp.StartAsync(engine, [.. what, "--writable", "--max-handshakes", "256"]).ConfigureAwait(false);
            companion = await CompanionClient.ConnectAsync(process.Uri(), CompanionOffset, CompanionSize).ConfigureAwait(false);
            var server = new BadInputServer(engine, export, process, companion, files);
            await server.WarmUpAsync().ConfigureAwait(false);
            return server;
        }
        catch
        {
            companion?.Dispose();
            process?.Dispose();
            files?.Dispose();
            throw;
        }
    }

    /// <summary>The checks every case ends with; <paramref name="context"/> names the case in failure messages.</summary>
    public async Task AssertHealthyAsync(string context)
    {
        Assert.False(Process.HasExited, $"{context}: nbdfast exited with status {Process.ExitCode}\n{Process.Stderr}");
        await Companion.CheckAsync(context).ConfigureAwait(false);
        (ProcessUsage usage, bool settled) = await ProcessProbe.WaitUntilAsync(Process.Pid,
            u => u.OpenFds <= Baseline.OpenFds + FdSlack && u.RssBytes <= Baseline.RssBytes + RssSlack, SettleTimeout).ConfigureAwait(false);
        Assert.True(settled, $"{context}: {Describe(usage)} did not settle back near the baseline within {SettleTimeout.TotalSeconds} s\n{Process.Stderr}");
        AssertNothingUnexpectedLogged(context);
    }

    /// <summary>"now: ..., baseline: ..." for messages.</summary>
    public string Describe(ProcessUsage usage) => $"[{Engine}/{Export}] now {usage}, baseline {Baseline}";

    /// <summary>
    /// Bad input is the client's problem, not the server's: it may be logged at -v, but a warning (an exception
    /// the server did not expect) or a runtime crash report on stderr is a finding.
    /// </summary>
    private void AssertNothingUnexpectedLogged(string context)
    {
        string stderr = Process.Stderr;
        string fresh = stderr[Math.Min(_stderrChecked, stderr.Length)..];
        _stderrChecked = stderr.Length;
        string[] unexpected = [.. fresh.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(line => !line.StartsWith("nbdfast: serving", StringComparison.Ordinal))
            // Back-pressure on a client that floods requests is the limit working; it is reported, not a fault.
            .Where(line => !line.Contains("(--max-in-flight, --max-in-flight-bytes)", StringComparison.Ordinal))];
        Assert.True(unexpected.Length == 0, $"{context}: nbdfast logged:\n{string.Join('\n', unexpected)}");
    }

    /// <summary>
    /// One well-behaved round and raw sessions through the paths cases use, maximal (32 MiB) transfers included,
    /// so that lazily built pools, buffers and the RAM disk's pages for the region cases overwrite are in the
    /// baseline; then the baseline itself once the numbers stop moving.
    /// </summary>
    private async Task WarmUpAsync()
    {
        await Companion.CheckAsync("warm-up").ConfigureAwait(false);
        // Two sessions at once, so pools that keep buffers per thread or per core see more than one user.
        await Task.WhenAll(MaximalSessionAsync(), MaximalSessionAsync()).ConfigureAwait(false);
        await MaximalSessionAsync().ConfigureAwait(false);
        ProcessUsage previous = ProcessProbe.Measure(Process.Pid);
        for (int i = 0; i < 20; i++)
        {
            await Task.Delay(100).ConfigureAwait(false);
            ProcessUsage now = ProcessProbe.Measure(Process.Pid);
            if (now.OpenFds == previous.OpenFds && Math.Abs(now.RssBytes - previous.RssBytes) < (1 << 20))
            {
                break;
            }
            previous = now;
        }
        Baseline = ProcessProbe.Measure(Process.Pid);
        AssertNothingUnexpectedLogged("warm-up");
    }

    /// <summary>A session that writes and reads back the last 32 MiB (the maximum payload) and disconnects.</summary>
    private async Task MaximalSessionAsync()
    {
        const int max = NbdFast.Protocol.NbdLimits.DefaultMaxPayload;
        (NbdFast.Tests.Support.RawNbdClient client, _) = await RawClients.NegotiateAsync(Process).ConfigureAwait(false);
        await using (client.ConfigureAwait(false))
        {
            await client.AssertInSyncAsync().ConfigureAwait(false);
            await client.SendWriteAsync((ulong)(ExportSize - max), new byte[max], cookie: 1).ConfigureAwait(false);
            await client.AssertSuccessReplyAsync(1).ConfigureAwait(false);
            await client.SendRequestAsync(NbdFast.Protocol.NbdCommand.Read, (ulong)(ExportSize - max), max, cookie: 2).ConfigureAwait(false);
            await client.AssertReadReplyAsync(2, (ulong)(ExportSize - max), max).ConfigureAwait(false);
            await client.SendDisconnectAsync().ConfigureAwait(false);
            await client.AssertClosedAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Companion.Dispose();
        try
        {
            if (!Process.HasExited)
            {
                await Process.StopAsync().ConfigureAwait(false);
            }
        }
        catch (TimeoutException)
        {
        }
        Process.Dispose();
        _files?.Dispose();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Engine}/{Export}");
}
