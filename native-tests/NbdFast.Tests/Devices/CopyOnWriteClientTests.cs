using System.Security.Cryptography;
using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Devices;

/// <summary>
/// A <see cref="CopyOnWriteDevice"/> over a <see cref="FileDevice"/> opened read-only, served writable on both
/// transports and written by real clients: python3-libnbd (sub-cluster and unaligned writes, zeroes with every
/// flag, trims, block status, and hundreds of pipelined writes into the same clusters) and qemu-io. Every
/// change reads back, the snapshot ends up holding exactly the model, and the base file is byte-identical to
/// what it was (same SHA-256) with nothing left in the overlay directory.
/// </summary>
public sealed class CopyOnWriteClientTests
{
    private const int TestTimeout = 180_000;
    private const int Size = 8 * 1024 * 1024;

    private const string Script = """
        import json, random, sys, nbd
        uri, base_path, model_path = sys.argv[1], sys.argv[2], sys.argv[3]
        M, C = 1 << 20, 65536
        h = nbd.NBD()
        h.add_meta_context("base:allocation")
        h.connect_uri(uri)
        assert not h.is_read_only()
        caps = {"zero": h.can_zero(), "trim": h.can_trim(), "flush": h.can_flush(), "fua": h.can_fua(),
                "fast_zero": h.can_fast_zero(), "multi_conn": h.can_multi_conn()}
        assert all(caps.values()), caps
        size = h.get_size()
        with open(base_path, "rb") as f:
            model = bytearray(f.read())
        assert len(model) == size
        rng = random.Random(61)
        out = {"checks": 0}
        def check(offset, length, what):
            offset, end = max(0, offset), min(size, offset + length)
            assert h.pread(end - offset, offset) == bytes(model[offset:end]), "%s: differs in %d..%d" % (what, offset, end)
            out["checks"] += 1
        def write(offset, length, flags=0):
            data = rng.randbytes(length)
            h.pwrite(data, offset, flags)
            model[offset:offset + length] = data
            check(offset - C, length + 2 * C, "write %d+%d" % (offset, length))
        def zero(offset, length, flags=0):
            h.zero(length, offset, flags)
            model[offset:offset + length] = bytes(length)
            check(offset - C, length + 2 * C, "zero %d+%d" % (offset, length))
        def trim(offset, length, flags=0):
            h.trim(length, offset, flags)
            model[offset:offset + length] = bytes(length)
            check(offset - C, length + 2 * C, "trim %d+%d" % (offset, length))
        def allocation(offset, length):
            got = []
            h.block_status(length, offset, lambda ctx, off, entries, err: got.extend(entries) or 0)
            return got
        # The base has 1 MiB stripes: 0, 2, 3, 5, 6 data, 1, 4, 7 sparse zero.
        out["base_alloc"] = allocation(M - C, 2 * C)
        write(1000, 100)                         # sub-cluster: copy-up from the base
        write(1500, 10)                          # same cluster, now in the overlay
        write(C - 7, 20)                         # unaligned, across a cluster boundary
        write(M + 5, 3)                          # into a sparse stripe of the base
        write(3 * C + 1, 2 * C + 5, nbd.CMD_FLAG_FUA)
        zero(5 * M + 100, 1000)                  # partial zero: copy-up, then zeroes
        zero(5 * M + 8 * C, 2 * C)               # whole clusters: a hole
        zero(5 * M + 10 * C, C, nbd.CMD_FLAG_NO_HOLE)
        zero(5 * M + 12 * C, 3 * C + 17, nbd.CMD_FLAG_FAST_ZERO)
        trim(2 * M + 3, C)                       # unaligned trim: zeroes exactly here
        trim(3 * M, M, nbd.CMD_FLAG_FUA)         # a whole data stripe
        write(5 * M + 8 * C + 99, 1)             # copy-up from a zeroed cluster
        write(size - 10, 10)
        h.flush()
        out["alloc_written"] = allocation(0, C)
        out["alloc_zeroed"] = allocation(5 * M + 9 * C, C)
        out["alloc_zeroed_no_hole"] = allocation(5 * M + 10 * C, C)
        out["alloc_trimmed"] = allocation(3 * M, M)
        out["alloc_untouched_hole"] = allocation(4 * M, M)
        # Pipelined: the region is cut into unaligned pieces written all at once, so many requests copy up and
        # write into the same clusters concurrently; reads of pieces that are not rewritten run among them.
        region = 6 * M + 3
        cuts, pos = [], region
        while pos < region + 4 * C:
            length = min(rng.randint(1, 3000), region + 4 * C - pos)
            cuts.append((pos, length))
            pos += length
        rng.shuffle(cuts)
        pending = []
        for i, (offset, length) in enumerate(cuts):
            if i % 5 == 4:
                buf = nbd.Buffer(length)
                pending.append((h.aio_pread(buf, offset), buf, bytes(model[offset:offset + length]), offset))
            else:
                data = rng.randbytes(length)
                model[offset:offset + length] = data
                pending.append((h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), offset), None, None, offset))
        out["pipelined"] = len(pending)
        for cookie, buf, want, offset in pending:
            while not h.aio_command_completed(cookie):
                h.poll(-1)
            if buf is not None:
                assert buf.to_bytearray() == want, "pipelined read at %d" % offset
        check(region - C, 6 * C, "pipelined region")
        for offset in range(0, size, M):
            check(offset, M, "final")
        with open(model_path, "wb") as f:
            f.write(model)
        h.shutdown()
        print(json.dumps(out))
        """;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task LibnbdWritesZeroesTrims_ReadBack_AndTheBaseFileIsUntouched(Transport transport)
    {
        using var temp = new TempDirectory();
        string basePath = temp.File("base.img");
        Images.CreateStriped(basePath, Size, seed: 62);
        byte[] hashBefore = await HashAsync(basePath);
        string overlayDirectory = Directory.CreateDirectory(temp.File("overlay")).FullName;
        string modelPath = temp.File("model.bin");

        var cow = new CopyOnWriteDevice(FileDevice.Open(basePath, readOnly: true), overlayDirectory, ownsBase: true);
        await using (cow)
        {
            await using var server = InProcessServer.Start(cow, readOnly: false, transport: transport);
            JsonElement output = await LibnbdPython.RunJsonAsync(Script, TimeSpan.FromSeconds(120), server.Uri, basePath, modelPath);
            await server.AssertNoErrorsAsync();

            string describe = output.GetRawText();
            Assert.True(output.GetProperty("checks").GetInt32() >= 20, describe);
            Assert.True(output.GetProperty("pipelined").GetInt32() >= 80, describe);
            // Block status: the base's own hole shows through; written clusters are data, zeroed ones zero.
            Assert.True(output.GetProperty("base_alloc").GetRawText() == "[65536, 0, 65536, 3]", describe);
            Assert.True(output.GetProperty("alloc_written").GetRawText() == "[65536, 0]", describe);
            Assert.True(output.GetProperty("alloc_zeroed").GetRawText() == "[65536, 3]", describe);
            Assert.True(output.GetProperty("alloc_zeroed_no_hole").GetRawText() == "[65536, 2]", describe);
            Assert.True(output.GetProperty("alloc_trimmed").GetRawText() == "[1048576, 3]", describe);
            Assert.True(output.GetProperty("alloc_untouched_hole").GetRawText() == "[1048576, 3]", describe);
            Assert.True(cow.OverlayBytes > 0 && cow.OverlayBytes < Size / 2, $"overlay holds {cow.OverlayBytes} bytes");

            await DeviceContents.AssertDeviceEqualsFileAsync(cow, modelPath);
        }

        Assert.Equal(Convert.ToHexString(hashBefore), Convert.ToHexString(await HashAsync(basePath)));
        Assert.Empty(Directory.EnumerateFileSystemEntries(overlayDirectory));
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task QemuIoWritesZeroesDiscards_ReadBack_AndTheBaseFileIsUntouched(Transport transport)
    {
        const int K64 = 65536;
        using var temp = new TempDirectory();
        string basePath = temp.CreateRandomFile("base.img", 4 * 1024 * 1024, seed: 63);
        byte[] model = await File.ReadAllBytesAsync(basePath);
        byte[] hashBefore = await HashAsync(basePath);

        var cow = new CopyOnWriteDevice(FileDevice.Open(basePath, readOnly: true), temp.FullPath, ownsBase: true);
        await using (cow)
        {
            await using var server = InProcessServer.Start(cow, readOnly: false, unixSocket: true, transport: transport);
            ToolResult result = await ExternalTool.RunCheckedAsync("qemu-io",
            [
                "-f", "raw",
                "-c", "write -P 0xab 1000 100",
                "-c", "write -P 0xcd 65530 20",
                "-c", "write -z 131072 65536",
                "-c", "write -z 200005 1000",
                "-c", "discard 262144 131072",
                // Pipelined into one base cluster and one just-discarded cluster: copy-up races copy-up.
                "-c", "aio_write -P 0x11 1048676 512",
                "-c", "aio_write -P 0x22 1049188 512",
                "-c", "aio_write -P 0x33 1049700 300",
                "-c", "aio_write -P 0x44 1110000 4000",
                "-c", "aio_write -P 0x55 300000 512",
                "-c", "aio_write -P 0x66 301024 100",
                "-c", "aio_flush",
                "-c", "read -P 0xab 1000 100",
                "-c", "read -P 0xcd 65530 20",
                "-c", "read -P 0 131072 65536",
                "-c", "read -P 0 262144 37856",
                "-c", "read -P 0x55 300000 512",
                "-c", "read -P 0x33 1049700 300",
                server.Uri,
            ]);
            Assert.DoesNotContain("Pattern verification failed", result.StdOut + result.StdErr, StringComparison.Ordinal);
            await server.AssertNoErrorsAsync();

            model.AsSpan(1000, 100).Fill(0xab);
            model.AsSpan(65530, 20).Fill(0xcd);
            model.AsSpan(131072, K64).Clear();
            model.AsSpan(200005, 1000).Clear();
            model.AsSpan(262144, 2 * K64).Clear();
            model.AsSpan(1048676, 512).Fill(0x11);
            model.AsSpan(1049188, 512).Fill(0x22);
            model.AsSpan(1049700, 300).Fill(0x33);
            model.AsSpan(1110000, 4000).Fill(0x44);
            model.AsSpan(300000, 512).Fill(0x55);
            model.AsSpan(301024, 100).Fill(0x66);
            await CopyOnWriteDeviceTests.AssertHoldsAsync(cow, model, "snapshot after qemu-io");
        }

        Assert.Equal(Convert.ToHexString(hashBefore), Convert.ToHexString(await HashAsync(basePath)));
        Assert.Equal(["base.img"], Directory.EnumerateFileSystemEntries(temp.FullPath).Select(Path.GetFileName));
    }

    private static async Task<byte[]> HashAsync(string path)
    {
        await using FileStream stream = File.OpenRead(path);
        return await SHA256.HashDataAsync(stream);
    }
}
