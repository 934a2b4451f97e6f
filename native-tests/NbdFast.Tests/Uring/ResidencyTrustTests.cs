using NbdFast.Devices;
using NbdFast.IO.Uring;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Uring;

/// <summary>
/// A connection stops checking that a page-cache READ's pages are cached after a run of reads that all found
/// them cached (<see cref="ResidencyTrust"/>), until its reactor's thread takes a major page fault after sending
/// unchecked replies (<see cref="ResidencyWatch"/>). The rules on their own first, then on the real kernel: a
/// send from pages evicted behind the server's back must count the fault on the reactor's thread, end the
/// trust, and still deliver the file's bytes.
/// </summary>
public sealed class ResidencyTrustTests
{
    private static void NoteCached(ResidencyTrust trust, ResidencyWatch watch, int reads)
    {
        for (int i = 0; i < reads; i++)
        {
            trust.NoteChecked(watch, resident: true);
        }
    }

    private static void CompleteRun(ResidencyTrust trust, ResidencyWatch watch) => NoteCached(trust, watch, trust.RunNeeded);

    [Fact]
    public void ChecksStopAfterARunOfCachedReads_AndResumeAfterAFaultBehindUncheckedSends()
    {
        var watch = new ResidencyWatch();
        var trust = new ResidencyTrust();
        NoteCached(trust, watch, ResidencyTrust.FirstRun - 1);
        Assert.False(trust.MaySkipCheck(watch, 4096));
        trust.NoteChecked(watch, resident: true);
        Assert.True(trust.MaySkipCheck(watch, 4096));
        Assert.False(trust.MaySkipCheck(watch, ResidencyTrust.LargestUnchecked + 1));
        Assert.Equal(1, watch.TrustStarts);

        // Turn 1: the baseline is taken; an unchecked reply is queued, to be sent in turn 2.
        Assert.True(watch.WantsFaultCount);
        watch.NoteUnchecked();
        watch.AfterTurn(majorFaults: 7);
        watch.EndTurn();
        // Turn 2: it was sent without a fault.
        Assert.True(watch.WantsFaultCount);
        watch.AfterTurn(majorFaults: 7);
        watch.EndTurn();
        Assert.False(watch.WantsFaultCount);
        Assert.True(trust.MaySkipCheck(watch, 4096));

        // Turn 3 queues another, and its send in turn 4 faults.
        watch.NoteUnchecked();
        watch.EndTurn();
        watch.AfterTurn(majorFaults: 8);
        Assert.Equal(1, watch.Trips);
        Assert.False(trust.MaySkipCheck(watch, 4096));
        Assert.Equal(2 * ResidencyTrust.FirstRun, trust.RunNeeded);
    }

    [Fact]
    public void AFaultWithNoUncheckedSendBehindIt_IsNoTrip()
    {
        var watch = new ResidencyWatch();
        var trust = new ResidencyTrust();
        CompleteRun(trust, watch);
        watch.AfterTurn(majorFaults: 3);   // the baseline
        watch.EndTurn();
        Assert.False(watch.WantsFaultCount);
        watch.AfterTurn(majorFaults: 4);   // e.g. the first read of a later run: nothing unchecked was sent
        Assert.Equal(0, watch.Trips);
        Assert.True(trust.MaySkipCheck(watch, 4096));
    }

    [Fact]
    public void AnUncachedReadStartsTheRunAgain()
    {
        var watch = new ResidencyWatch();
        var trust = new ResidencyTrust();
        NoteCached(trust, watch, ResidencyTrust.FirstRun - 1);
        trust.NoteChecked(watch, resident: false);
        NoteCached(trust, watch, ResidencyTrust.FirstRun - 1);
        Assert.False(trust.MaySkipCheck(watch, 4096));
        trust.NoteChecked(watch, resident: true);
        Assert.True(trust.MaySkipCheck(watch, 4096));
    }

    [Fact]
    public void OneTripEndsTheTrustOfEveryConnectionOnTheReactor_AndEachTripDoublesTheRun()
    {
        var watch = new ResidencyWatch();
        var first = new ResidencyTrust();
        var second = new ResidencyTrust();
        long faults = 0;
        for (int trip = 1; trip <= 12; trip++)
        {
            int needed = first.RunNeeded;
            CompleteRun(first, watch);
            CompleteRun(second, watch);
            watch.AfterTurn(faults);
            watch.EndTurn();
            Assert.True(first.MaySkipCheck(watch, 4096));
            Assert.True(second.MaySkipCheck(watch, 4096));
            watch.NoteUnchecked();         // only the first connection sends unchecked
            watch.EndTurn();
            watch.AfterTurn(++faults);
            watch.EndTurn();
            Assert.False(first.MaySkipCheck(watch, 4096));
            Assert.False(second.MaySkipCheck(watch, 4096));
            Assert.Equal(Math.Min(needed * 2, ResidencyTrust.LongestRun), first.RunNeeded);
        }
        Assert.Equal(ResidencyTrust.LongestRun, first.RunNeeded);
    }

    [Fact]
    public void WithoutAFaultCount_NothingIsTrusted()
    {
        var watch = new ResidencyWatch();
        var trust = new ResidencyTrust();
        trust.NoteChecked(watch, resident: true);
        watch.NoteTrustStarted();
        watch.AfterTurn(majorFaults: -1);
        Assert.True(watch.Blind);
        CompleteRun(trust, watch);
        Assert.False(trust.MaySkipCheck(watch, 4096));
    }

    // Phase 1 reads the first MiB over and over (cached: the connection starts trusting), then waits for the
    // test to look. Phase 2 evicts the file's second half, which the server never mapped in (fault-around maps
    // at most 64 KiB beside a faulting page), and reads it on the same connection: the first send from it must
    // read pages from the disk inside the kernel's copy. Every byte is compared.
    private static string Script(string path, string phase1Done, string phase2Go) => $$"""
        import nbd, os, sys, json, time
        MiB = 1 << 20
        fd = os.open({{Json(path)}}, os.O_RDONLY)
        content = os.pread(fd, 8 * MiB, 0)
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        for i in range({{ResidencyTrust.FirstRun + 1024}}):
            off = (i % 256) * 4096
            if h.pread(4096, off) != content[off:off + 4096]:
                raise SystemExit(f"cached read: mismatch at {off}")
        open({{Json(phase1Done)}}, "w").close()
        deadline = time.time() + 30
        while not os.path.exists({{Json(phase2Go)}}):
            if time.time() > deadline:
                raise SystemExit("the test never said go")
            time.sleep(0.01)
        os.posix_fadvise(fd, 4 * MiB, 4 * MiB, os.POSIX_FADV_DONTNEED)
        for off in range(4 * MiB, 8 * MiB, 4096):
            if h.pread(4096, off) != content[off:off + 4096]:
                raise SystemExit(f"evicted read: mismatch at {off}")
        h.shutdown()
        print(json.dumps({"ok": True}))
        """;

    private static string Json(string text) => System.Text.Json.JsonSerializer.Serialize(text);

    [Fact(Timeout = 120_000)]
    public async Task ASendFromEvictedPages_EndsTheTrust_AndDeliversTheFile()
    {
        // Beside the test binaries, on the checkout's disk: on a tmpfs temp dir DONTNEED would evict nothing.
        string dir = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, $"residency-{Guid.NewGuid():N}")).FullName;
        try
        {
            string path = Path.Combine(dir, "disk.img");
            using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                byte[] data = new byte[8 << 20];
                new Random(5).NextBytes(data);
                stream.Write(data);
                stream.Flush(flushToDisk: true);   // clean pages, so DONTNEED can drop them
            }
            string phase1Done = Path.Combine(dir, "phase1"), phase2Go = Path.Combine(dir, "go");
            using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason);
            Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
            await using FileDevice device = FileDevice.Open(path);
            await using (var host = new UringServerHost(engine, device))
            {
                Task<System.Text.Json.JsonElement> script = LibnbdPython.RunJsonAsync(Script(path, phase1Done, phase2Go), host.Uri);
                while (!File.Exists(phase1Done))
                {
                    Assert.False(script.IsCompleted, "the script ended before its first phase did");
                    await Task.Delay(10);
                }
                (int starts, int trips) = Assert.Single(await engine.MeasureResidencyTrustAsync());
                Assert.Equal((1, 0), (starts, trips));

                File.WriteAllBytes(phase2Go, []);
                Assert.True((await script).GetProperty("ok").GetBoolean());
            }
            (int _, int tripsAfter) = Assert.Single(await engine.MeasureResidencyTrustAsync());
            Assert.True(tripsAfter >= 1, "no major fault ended the trust after a send from evicted pages");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
