using NbdFast.Devices;
using NbdFast.IO.Uring;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Uring;

/// <summary>
/// Page-cache READs skip the residency check after a run of reads that all found their pages cached, until the
/// reactor thread takes a major page fault (<see cref="ResidencyTrust"/>). The rules on their own first, then on
/// the real kernel: a send from pages evicted behind the server's back must count the fault on the reactor's
/// thread, end the trust, and still deliver the file's bytes.
/// </summary>
public sealed class ResidencyTrustTests
{
    [Fact]
    public void ChecksStopAfterARunOfCachedReads_AndResumeAfterAMajorFault()
    {
        var trust = new ResidencyTrust();
        for (int i = 0; i < ResidencyTrust.FirstRun - 1; i++)
        {
            trust.NoteChecked(resident: true);
        }
        Assert.False(trust.WantsFaultCount);
        trust.NoteChecked(resident: true);
        Assert.True(trust.WantsFaultCount);
        Assert.False(trust.Trusting);           // not before the turn ends: the fault count is taken then

        trust.AfterTurn(majorFaults: 7);
        Assert.True(trust.Trusting);
        Assert.False(trust.WantsFaultCount);    // nothing sent unchecked yet: no count to take
        trust.NoteUnchecked();
        Assert.True(trust.WantsFaultCount);
        trust.AfterTurn(majorFaults: 7);
        Assert.True(trust.Trusting);
        trust.NoteUnchecked();

        trust.AfterTurn(majorFaults: 8);
        Assert.False(trust.Trusting);
        Assert.False(trust.WantsFaultCount);
        Assert.Equal(1, trust.Trips);
        Assert.Equal(2 * ResidencyTrust.FirstRun, trust.RunNeeded);
    }

    [Fact]
    public void AnUncachedReadStartsTheRunAgain()
    {
        var trust = new ResidencyTrust();
        for (int i = 0; i < ResidencyTrust.FirstRun - 1; i++)
        {
            trust.NoteChecked(resident: true);
        }
        trust.NoteChecked(resident: false);
        for (int i = 0; i < ResidencyTrust.FirstRun - 1; i++)
        {
            trust.NoteChecked(resident: true);
        }
        trust.AfterTurn(majorFaults: 0);
        Assert.False(trust.Trusting);
        trust.NoteChecked(resident: true);
        trust.AfterTurn(majorFaults: 0);
        Assert.True(trust.Trusting);
    }

    [Fact]
    public void EachTripDoublesTheRun_UpToTheLongest()
    {
        var trust = new ResidencyTrust();
        long faults = 0;
        for (int trip = 1; trip <= 12; trip++)
        {
            int needed = trust.RunNeeded;
            for (int i = 0; i < needed; i++)
            {
                trust.NoteChecked(resident: true);
            }
            trust.AfterTurn(faults);
            Assert.True(trust.Trusting);
            trust.AfterTurn(++faults);
            Assert.False(trust.Trusting);
            Assert.Equal(Math.Min(needed * 2, ResidencyTrust.LongestRun), trust.RunNeeded);
        }
        Assert.Equal(ResidencyTrust.LongestRun, trust.RunNeeded);
    }

    [Fact]
    public void WithoutAFaultCount_EveryReadIsChecked()
    {
        var trust = new ResidencyTrust();
        for (int i = 0; i < ResidencyTrust.FirstRun; i++)
        {
            trust.NoteChecked(resident: true);
        }
        trust.AfterTurn(majorFaults: -1);
        Assert.False(trust.Trusting);
    }

    // Reads the first MiB over and over (cached: the trust starts), then evicts the file's second half, which
    // the server never mapped in (fault-around maps at most 64 KiB beside a faulting page), and reads it: the
    // first send from it must read pages from the disk inside the kernel's copy. Every byte is compared.
    private static string Script(string path) => $$"""
        import nbd, os, sys, json
        MiB = 1 << 20
        fd = os.open({{System.Text.Json.JsonSerializer.Serialize(path)}}, os.O_RDONLY)
        content = os.pread(fd, 8 * MiB, 0)
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        for i in range({{ResidencyTrust.FirstRun + 1024}}):
            off = (i % 256) * 4096
            if h.pread(4096, off) != content[off:off + 4096]:
                raise SystemExit(f"cached read: mismatch at {off}")
        os.posix_fadvise(fd, 4 * MiB, 4 * MiB, os.POSIX_FADV_DONTNEED)
        for off in range(4 * MiB, 8 * MiB, 4096):
            if h.pread(4096, off) != content[off:off + 4096]:
                raise SystemExit(f"evicted read: mismatch at {off}")
        h.shutdown()
        print(json.dumps({"ok": True}))
        """;

    [Fact(Timeout = 120_000)]
    public async Task ASendFromEvictedPages_EndsTheTrust_AndDeliversTheFile()
    {
        // Beside the test binaries, on the checkout's disk: on a tmpfs temp dir DONTNEED would evict nothing.
        string path = Path.Combine(AppContext.BaseDirectory, $"residency-{Guid.NewGuid():N}.img");
        try
        {
            using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                byte[] data = new byte[8 << 20];
                new Random(5).NextBytes(data);
                stream.Write(data);
                stream.Flush(flushToDisk: true);   // clean pages, so DONTNEED can drop them
            }
            using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason);
            Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
            await using FileDevice device = FileDevice.Open(path);
            await using (var host = new UringServerHost(engine, device))
            {
                var result = await LibnbdPython.RunJsonAsync(Script(path), host.Uri);
                Assert.True(result.GetProperty("ok").GetBoolean());
            }
            (int trips, bool trusting) = Assert.Single(await engine.MeasureResidencyTrustAsync());
            Assert.True(trips >= 1, "no major fault ended the trust after a send from evicted pages");
            Assert.False(trusting);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
