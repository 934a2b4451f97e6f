using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Uring;

/// <summary>
/// When the kernel refuses to register the buffer slab (over the memlock budget, or, as forced here, a
/// buffer larger than the 1 GiB the kernel accepts), the reactor runs with plain READ/WRITE on the same
/// aligned buffers, and data still round-trips.
/// </summary>
public sealed class UnregisteredBufferTests
{
    private const string Script = """
        import nbd, os, random, sys, json
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        size = h.get_size()
        random.seed(7)
        model = {}
        for i in range(300):
            n = random.choice([512, 4096, 65536, 1 << 20])
            off = random.randrange(0, size - n)
            data = os.urandom(n)
            h.pwrite(data, off, nbd.CMD_FLAG_FUA if i % 7 == 0 else 0)
            if h.pread(n, off) != data:
                raise SystemExit(f"mismatch at {off}+{n}")
        h.flush()
        h.shutdown()
        print(json.dumps({"ok": True}))
        """;

    [Fact(Timeout = 120_000)]
    public async Task FileExportWorksWhenBufferRegistrationFails()
    {
        using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason, registeredBufferBytes: (1L << 30) + 4096);
        Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        Assert.Contains("not registered", engine.Description, StringComparison.Ordinal);

        await FileScript.RunAsync(engine, 32 << 20, Script);
    }

    [Fact]
    public void DefaultSlabIsRegisteredWhenTheBudgetAllows()
    {
        using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason);
        Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        // The test runs as root here (as CI does), which is exempt from RLIMIT_MEMLOCK.
        Assert.Contains("registered", engine.Description, StringComparison.Ordinal);
        Assert.DoesNotContain("not registered", engine.Description, StringComparison.Ordinal);
    }
}
