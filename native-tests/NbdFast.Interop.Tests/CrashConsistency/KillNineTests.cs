using System.Diagnostics;
using System.Globalization;
using NbdFast.Interop.Tests.Support;
using Xunit.Abstractions;

namespace NbdFast.Interop.Tests.CrashConsistency;

/// <summary>
/// Crash consistency (reliability.md (d), DS-1, DS-2, DS-7): python3-libnbd writes at random with several
/// requests in flight (some FUA, flushes in between) while the published server is SIGKILLed at a random
/// moment; the backing file must then hold every write the contract made durable, and only bytes some write
/// (or the earlier content) explains. The server restarts on the same file for the next round.
/// </summary>
public sealed class KillNineTests(ITestOutputHelper output)
{
    private const int FileSize = 8 << 20;
    private const int KillsPerMode = 50;
    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(60);

    private static string WriterScript => Path.Combine(AppContext.BaseDirectory, "CrashConsistency", "crash_writer.py");

    /// <summary>Both engines, buffered and O_DIRECT: 4 × 50 = 200 kills.</summary>
    public static TheoryData<string, bool> Modes => new()
    {
        { "uring", false },
        { "sockets", false },
        { "uring", true },
        { "sockets", true },
    };

    [Theory(Timeout = 600_000)]
    [MemberData(nameof(Modes))]
    public async Task KillNine_DuringRandomWrites_LosesNoDurableWrite(string io, bool direct)
    {
        using var directory = new TempDirectory();
        string image = directory.File("disk.img");
        string socket = directory.File("nbd.sock");
        var model = new ShadowModel(directory.WriteRandom("disk.img", FileSize, seed: 4242));
        string[] arguments = [image, "--writable", "--io", io, .. direct ? new[] { "--direct" } : []];
        int baseSeed = Random.Shared.Next();
        var totals = new Totals();
        var clock = Stopwatch.StartNew();

        for (int kill = 1; kill <= KillsPerMode; kill++)
        {
            int seed = baseSeed + kill;
            var rng = new Random(seed);
            string round = $"--io {io}{(direct ? " --direct" : "")}, kill {kill}, seed {seed}";

            using NbdfastProcess server = await NbdfastProcess.StartUnixAtAsync(socket, arguments);
            using var writer = new BackgroundTool(ToolEnvironment.Python,
                [WriterScript, server.Uri(), Text(FileSize), Text(seed), Text(rng.Next(2, 17))]);
            await writer.WaitForLineAsync("CONNECTED", ClientTimeout);
            await Task.Delay(rng.Next(50, 301));
            await server.StopAsync(Signals.SigKill);

            ToolResult written = await writer.WaitForExitAsync(ClientTimeout);
            Assert.True(written.Succeeded, $"{round}: the writer failed\n{written.Describe()}\n--- server ---\n{server.Stderr}");
            WriteLog log = WriteLog.Parse(written.Stdout);
            byte[] content = await File.ReadAllBytesAsync(image);
            foreach (Durability rule in Enum.GetValues<Durability>())
            {
                CheckResult result = model.Check(log, content, rule);
                Assert.True(result.Clean,
                    $"{round}: {rule}: {result.BadBytes} bytes wrong, durable writes lost: {string.Join(", ", result.LostWriteIds)}\n" +
                    $"{result.Details}--- writer stderr ---\n{written.Stderr}--- server ---\n{server.Stderr}");
            }
            model.Advance(log, content);
            totals.Add(log);
        }

        output.WriteLine(
            $"--io {io}{(direct ? " --direct" : "")}: {KillsPerMode} kills survived in {clock.Elapsed.TotalSeconds:F1} s; " +
            $"writes issued {totals.Issued}, acknowledged {totals.Acknowledged} ({totals.FuaAcknowledged} with FUA, " +
            $"{totals.Flushed} more covered by a flush), flushes acknowledged {totals.Flushes}, " +
            $"rounds killed with commands in flight {totals.CutOff}");
        // Guard against a vacuous pass (a writer that never got going would "lose" nothing).
        Assert.True(totals.FuaAcknowledged > 0 && totals.Flushed > 0 && totals.Acknowledged > totals.FuaAcknowledged,
            "the writers got too little acknowledged to test anything");
        Assert.True(totals.CutOff > 0, "no kill caught a command in flight");
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private sealed class Totals
    {
        public long Issued { get; private set; }
        public long Acknowledged { get; private set; }
        public long FuaAcknowledged { get; private set; }
        public long Flushed { get; private set; }
        public long Flushes { get; private set; }
        public int CutOff { get; private set; }

        public void Add(WriteLog log)
        {
            int flushedBefore = log.LastAcknowledgedFlushIssue;
            Issued += log.Writes.Count;
            Acknowledged += log.Writes.Count(w => w.Acknowledged);
            FuaAcknowledged += log.Writes.Count(w => w.Acknowledged && w.Fua);
            Flushed += log.Writes.Count(w => w.Acknowledged && !w.Fua && w.AckSequence < flushedBefore);
            Flushes += log.Flushes.Count(f => f.Acknowledged);
            if (log.Writes.Any(w => !w.Acknowledged) || log.Flushes.Any(f => !f.Acknowledged))
            {
                CutOff++;
            }
        }
    }
}
