using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// NBD_CMD_BLOCK_STATUS with the <c>base:allocation</c> context through python3-libnbd: a sparse
/// <see cref="FileDevice"/> (SEEK_DATA/SEEK_HOLE) and a <see cref="MemoryDevice"/> (64 KiB chunks) report their
/// holes as hole|zero (3) and their data as 0, and a trim on the file shows up as a new hole.
/// </summary>
public sealed class BlockStatusClientTests
{
    private const int TestTimeout = 120_000;
    private const int K64 = 64 * 1024;
    private const int M = 1024 * 1024;

    // Walks the whole export with block_status (the server may answer a shorter range, and libnbd may hand over a
    // last extent reaching past the request), merges neighbours with equal flags and prints [offset, length, flags]
    // triples. With argv[2] = "trim:OFFSET:LENGTH" it trims first, and maps before and after.
    private const string MapScript = """
        import json, sys, nbd
        h = nbd.NBD()
        h.add_meta_context("base:allocation")
        h.connect_uri(sys.argv[1])
        assert h.can_meta_context("base:allocation"), "base:allocation was not negotiated"
        size = h.get_size()
        def walk(request):
            out, offset, calls = [], 0, 0
            while offset < size:
                end = min(offset + request, size)
                got = []
                def extent(metacontext, off, entries, err):
                    assert metacontext == "base:allocation", metacontext
                    got.append((off, list(entries)))
                    return 0
                h.block_status(end - offset, offset, extent)
                calls += 1
                assert len(got) == 1 and got[0][0] == offset, got
                entries = got[0][1]
                assert entries and len(entries) % 2 == 0, entries
                for i in range(0, len(entries), 2):
                    length, flags = entries[i], entries[i + 1]
                    assert length > 0, entries
                    length = min(length, end - offset)
                    if out and out[-1][2] == flags and out[-1][0] + out[-1][1] == offset:
                        out[-1][1] += length
                    else:
                        out.append([offset, length, flags])
                    offset += length
                    if offset >= end:
                        break
            return out, calls
        result = {}
        result["map"], result["calls"] = walk(size)
        # Small requests: every answer is clipped to the request and the pieces still add up to the same map.
        result["map_small"], result["calls_small"] = walk(192 * 1024 + 512)
        if len(sys.argv) > 2 and sys.argv[2].startswith("trim:"):
            _, offset, length = sys.argv[2].split(":")
            h.trim(int(length), int(offset))
            h.flush()
            result["after_trim"], _ = walk(size)
            result["after_trim_read"] = h.pread(int(length), int(offset)) == bytes(int(length))
        h.shutdown()
        print(json.dumps(result))
        """;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task SparseFile_HolesAreHoleZeroAndDataIsData_TrimMakesAHole(Transport transport)
    {
        using var temp = new TempDirectory();
        string backing = temp.File("sparse.img");
        const long Size = 16 * M;
        // Data at [1 MiB, +64 KiB), [4 MiB, +320 KiB) (the first 64 KiB of it written as zeroes, still allocated)
        // and the last 128 KiB; everything else is a hole. Offsets are 64 KiB aligned, beyond any filesystem block.
        using (var file = new FileStream(backing, FileMode.CreateNew, FileAccess.Write))
        {
            file.SetLength(Size);
            WriteAt(file, 1 * M, Pattern(K64, 1));
            WriteAt(file, 4 * M, new byte[K64]);
            WriteAt(file, 4 * M + K64, Pattern(4 * K64, 2));
            WriteAt(file, Size - 2 * K64, Pattern(2 * K64, 3));
        }
        long[][] expected =
        [
            [0, 1 * M, 3],
            [1 * M, K64, 0],
            [1 * M + K64, 3 * M - K64, 3],
            [4 * M, 5 * K64, 0],
            [4 * M + 5 * K64, Size - 2 * K64 - (4 * M + 5 * K64), 3],
            [Size - 2 * K64, 2 * K64, 0],
        ];
        FileDevice device = FileDevice.Open(backing);
        await using (device)
        {
            await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

            // Trim the last 128 KiB of the 320 KiB region at 4 MiB: the hole after it grows to start at 4 MiB + 192 KiB.
            JsonElement output = await LibnbdPython.RunJsonAsync(MapScript, server.Uri, $"trim:{4 * M + 3 * K64}:{2 * K64}");

            AssertMap(expected, output.GetProperty("map"), "whole-export requests");
            AssertMap(expected, output.GetProperty("map_small"), "192.5 KiB requests");
            Assert.True(output.GetProperty("after_trim_read").GetBoolean(), "the trimmed range does not read as zeroes");
            long[][] afterTrim =
            [
                [0, 1 * M, 3],
                [1 * M, K64, 0],
                [1 * M + K64, 3 * M - K64, 3],
                [4 * M, 3 * K64, 0],
                [4 * M + 3 * K64, Size - 2 * K64 - (4 * M + 3 * K64), 3],
                [Size - 2 * K64, 2 * K64, 0],
            ];
            AssertMap(afterTrim, output.GetProperty("after_trim"), "after trimming 4 MiB + 192 KiB, 128 KiB");
            await server.AssertNoErrorsAsync();
        }
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task MemoryDevice_WrittenChunksAreDataTheRestHoleZero(Transport transport)
    {
        const long Size = 8 * M + 4096; // a partial last chunk
        var device = new MemoryDevice(Size);
        // One byte commits a whole 64 KiB chunk; zeroes written are still data.
        await device.WriteAsync(0, new byte[] { 9 }, WriteFlags.None);
        await device.WriteAsync(2 * M + 5, new byte[3 * K64], WriteFlags.None);             // chunks 32..35
        await device.WriteAsync(5 * M, Pattern(K64, 4), WriteFlags.None);                    // chunk 80
        await device.WriteAsync(5 * M + 2 * K64, Pattern(K64, 5), WriteFlags.None);          // chunk 82
        await device.WriteAsync(Size - 1, new byte[] { 1 }, WriteFlags.None);                // the partial last chunk
        long[][] expected =
        [
            [0, K64, 0],
            [K64, 2 * M - K64, 3],
            [2 * M, 4 * K64, 0],
            [2 * M + 4 * K64, 3 * M - 4 * K64, 3],
            [5 * M, K64, 0],
            [5 * M + K64, K64, 3],
            [5 * M + 2 * K64, K64, 0],
            [5 * M + 3 * K64, 3 * M - 3 * K64, 3],
            [8 * M, 4096, 0],
        ];
        await using var server = InProcessServer.Start(device, transport: transport);

        JsonElement output = await LibnbdPython.RunJsonAsync(MapScript, server.Uri);

        AssertMap(expected, output.GetProperty("map"), "whole-export requests");
        AssertMap(expected, output.GetProperty("map_small"), "192.5 KiB requests");
        await server.AssertNoErrorsAsync();
    }

    private static void AssertMap(long[][] expected, JsonElement actual, string what)
    {
        string[] want = [.. expected.Select(e => $"{e[0]}+{e[1]}:{e[2]}")];
        string[] got = [.. actual.EnumerateArray().Select(e => $"{e[0].GetInt64()}+{e[1].GetInt64()}:{e[2].GetInt64()}")];
        Assert.True(want.SequenceEqual(got), $"{what}:{Environment.NewLine}expected {string.Join(' ', want)}{Environment.NewLine}got      {string.Join(' ', got)}");
    }

    private static byte[] Pattern(int length, int seed)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        data[0] = 0xff; // never all zeroes
        return data;
    }

    private static void WriteAt(FileStream file, long offset, byte[] data)
    {
        file.Position = offset;
        file.Write(data);
    }
}
