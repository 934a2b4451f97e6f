using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// Write-zeroes (with and without NO_HOLE), trim, FUA writes and flush through python3-libnbd. Zeroed and trimmed
/// ranges read back as zeroes (both devices punch or clear what they trim); on a <see cref="FileDevice"/> the
/// script reads the backing file itself right after each FUA write, zero, trim and flush returns, before the
/// connection ends, so the server must have completed the operation before it replied.
/// </summary>
public sealed class ZeroTrimFuaClientTests
{
    private const int TestTimeout = 120_000;
    private const int Size = 16 * 1024 * 1024;

    private const string Script = """
        import json, random, sys, nbd
        uri, initial_path, backing, model_path = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
        M, K = 1 << 20, 1 << 10
        h = nbd.NBD()
        h.add_meta_context("base:allocation")
        h.connect_uri(uri)
        assert not h.is_read_only()
        caps = {"can_zero": h.can_zero(), "can_trim": h.can_trim(), "can_fua": h.can_fua(), "can_flush": h.can_flush()}
        assert all(caps.values()), caps
        size = h.get_size()
        with open(initial_path, "rb") as f:
            model = bytearray(f.read())
        rng = random.Random(77)
        out = {"file_checks": 0}
        def step(what):
            # Progress on stderr: if the server hangs, the killed script's output shows where.
            print(what, file=sys.stderr, flush=True)
        def check(offset, length, what):
            want = bytes(model[offset:offset + length])
            got = h.pread(length, offset)
            assert got == want, "%s: export differs at %d+%d" % (what, offset, length)
            if backing != "-":
                # Straight from the backing file, while the connection is still open.
                with open(backing, "rb") as f:
                    f.seek(offset)
                    on_disk = f.read(length)
                assert on_disk == want, "%s: backing file differs at %d+%d" % (what, offset, length)
                out["file_checks"] += 1
        def zero(offset, length, flags, what):
            step(what)
            h.zero(length, offset, flags)
            model[offset:offset + length] = bytes(length)
            check(offset - 1, length + 2, what)   # one byte either side must be untouched
        def trim(offset, length, flags, what):
            step(what)
            h.trim(length, offset, flags)
            model[offset:offset + length] = bytes(length)
            check(offset - 1, length + 2, what)
        def write(offset, length, flags, what):
            step(what)
            data = rng.randbytes(length)
            h.pwrite(data, offset, flags)
            model[offset:offset + length] = data
            if flags & nbd.CMD_FLAG_FUA:
                check(offset, length, what)
            return data
        def allocation(offset, length):
            got = []
            h.block_status(length, offset, lambda ctx, off, entries, err: got.extend(entries) or 0)
            return got
        zero(100000, 300001, 0, "zero")
        zero(M + 17, 200000, nbd.CMD_FLAG_NO_HOLE, "zero NO_HOLE")
        zero(2 * M, 256 * K, 0, "aligned zero")
        zero(3 * M, 256 * K, nbd.CMD_FLAG_NO_HOLE, "aligned zero NO_HOLE")
        zero(4 * M + 5, 4096, nbd.CMD_FLAG_FUA, "zero FUA")
        out["alloc_zeroed"] = allocation(2 * M, 256 * K)
        out["alloc_zeroed_no_hole"] = allocation(3 * M, 256 * K)
        trim(5 * M + 3, 500000, 0, "unaligned trim")
        trim(6 * M, M, 0, "aligned trim")
        trim(7 * M + 1, 8191, nbd.CMD_FLAG_FUA, "trim FUA")
        out["alloc_trimmed"] = allocation(6 * M, M)
        write(8 * M + 1, 70000, nbd.CMD_FLAG_FUA, "FUA write")
        write(9 * M, 2 * M, nbd.CMD_FLAG_FUA, "large FUA write")
        for i in range(16):
            write(10 * M + i * 65536 + i, 1000 + i * 3000, nbd.CMD_FLAG_FUA if i % 2 else 0, "write %d" % i)
        step("flush")
        h.flush()
        check(10 * M, 2 * M, "writes after flush")
        write(12 * M, 12345, 0, "plain write")
        h.flush()
        check(12 * M, 12345, "plain write after flush")
        step = 4 * M
        for offset in range(0, size, step):
            assert h.pread(step, offset) == bytes(model[offset:offset + step]), "final read at %d" % offset
        with open(model_path, "wb") as f:
            f.write(model)
        h.shutdown()
        print(json.dumps(out))
        """;

    public static TheoryData<Transport, string> Cases => new()
    {
        { Transport.Streams, "memory" },
        { Transport.Streams, "file" },
        { Transport.Streams, "file-direct" },
        { Transport.Uring, "memory" },
        { Transport.Uring, "file" },
        { Transport.Uring, "file-direct" },
    };

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Cases))]
    public async Task ZeroTrimFuaFlush_ReadBackAndReachTheBackingStore(Transport transport, string kind)
    {
        using var temp = new TempDirectory();
        string initialPath = temp.CreateRandomFile("initial.bin", Size, seed: 4711);
        string modelPath = temp.File("model.bin");
        string backing = temp.File("backing.img");
        IBlockDevice device;
        if (kind == "memory")
        {
            device = new MemoryDevice(Size);
            await device.WriteAsync(0, await File.ReadAllBytesAsync(initialPath), WriteFlags.None);
        }
        else
        {
            File.Copy(initialPath, backing);
            device = FileDevice.Open(backing, direct: kind == "file-direct");
        }

        await using (device)
        {
            await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

            JsonElement output = await LibnbdPython.RunJsonAsync(Script, TimeSpan.FromSeconds(45), server.Uri, initialPath, kind == "memory" ? "-" : backing, modelPath);

            string describe = output.GetRawText();
            if (kind == "memory")
            {
                // Whole chunks: a plain zero and a trim release them (hole|zero), NO_HOLE keeps them allocated.
                Assert.True(output.GetProperty("alloc_zeroed").GetRawText() == "[262144, 3]", describe);
                Assert.True(output.GetProperty("alloc_zeroed_no_hole").GetRawText() == "[262144, 0]", describe);
                Assert.True(output.GetProperty("alloc_trimmed").GetRawText() == "[1048576, 3]", describe);
            }
            else
            {
                Assert.True(output.GetProperty("file_checks").GetInt32() >= 15, describe);
                // Punched: a hole that reads as zeroes.
                Assert.True(output.GetProperty("alloc_trimmed").GetRawText() == "[1048576, 3]", describe);
            }
            await server.AssertNoErrorsAsync();
            await DeviceContents.AssertDeviceEqualsFileAsync(device, modelPath);
        }
        if (kind != "memory")
        {
            await DeviceContents.AssertFilesEqualAsync(modelPath, backing);
        }
    }
}
