using System.Globalization;
using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// A sparse raw file served from a <see cref="FileDevice"/>: <c>qemu-img map</c> of the export shows its holes
/// (zero, no data) and its data, and <c>qemu-img convert</c> of the export to a new raw or qcow2 file keeps the
/// holes unallocated while copying every byte.
/// </summary>
public sealed class SparseQemuImgTests
{
    private const int TestTimeout = 120_000;
    private const long K64 = 64 * 1024;
    private const long M = 1024 * 1024;
    private const long Size = 32 * M;

    // (offset, length, all zero bytes?) of the allocated regions; everything else is a hole.
    private static readonly (long Offset, long Length, bool Zeroes)[] s_regions =
    [
        (1 * M, K64, false),
        (4 * M, K64, true),             // allocated, but written with zeroes
        (4 * M + K64, 4 * K64, false),
        (17 * M, 3 * M, false),
        (Size - 2 * K64, 2 * K64, false),
    ];

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Map_ShowsHoles_AndConvertKeepsThemSparse(Transport transport)
    {
        using var temp = new TempDirectory();
        string backing = temp.File("sparse.img");
        CreateSparse(backing);
        long sourceDataBytes = s_regions.Sum(r => r.Length);
        long nonZeroBytes = s_regions.Where(r => !r.Zeroes).Sum(r => r.Length);
        // The source file itself must be sparse, or the test proves nothing.
        Assert.True(await AllocatedBytesAsync(backing) <= sourceDataBytes + M, "the source file is not sparse on this filesystem");

        FileDevice device = FileDevice.Open(backing, readOnly: true);
        await using (device)
        {
            await using var server = InProcessServer.Start(device, transport: transport);

            // The export's map: exactly the holes and the data of the file.
            ToolResult map = await ExternalTool.RunCheckedAsync("qemu-img", ["map", "--output=json", "-f", "raw", server.Uri]);
            string[] expected =
            [
                $"0+{1 * M}:nodata,zero",
                $"{1 * M}+{K64}:data,nonzero",
                $"{1 * M + K64}+{3 * M - K64}:nodata,zero",
                $"{4 * M}+{5 * K64}:data,nonzero",
                $"{4 * M + 5 * K64}+{17 * M - (4 * M + 5 * K64)}:nodata,zero",
                $"{17 * M}+{3 * M}:data,nonzero",
                $"{20 * M}+{Size - 2 * K64 - 20 * M}:nodata,zero",
                $"{Size - 2 * K64}+{2 * K64}:data,nonzero",
            ];
            Assert.Equal(expected, ParseMap(map.StdOut).Select(Describe));

            // Raw copy: same bytes, and only (at most) the source's data allocated.
            string raw = temp.File("copy.raw");
            await ExternalTool.RunCheckedAsync("qemu-img", ["convert", "-f", "raw", "-O", "raw", server.Uri, raw]);
            await DeviceContents.AssertFilesEqualAsync(backing, raw);
            long rawAllocated = await AllocatedBytesAsync(raw);
            Assert.True(rawAllocated >= nonZeroBytes && rawAllocated <= sourceDataBytes + M,
                $"copy.raw has {rawAllocated} bytes allocated; the source has {sourceDataBytes} bytes of data ({nonZeroBytes} non-zero) in {Size}");
            await AssertDataWithinSourceDataAsync(raw, "raw");

            // qcow2 copy: identical contents, clusters allocated only for the data.
            string qcow2 = temp.File("copy.qcow2");
            await ExternalTool.RunCheckedAsync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", server.Uri, qcow2]);
            ToolResult compare = await ExternalTool.RunCheckedAsync("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", backing, qcow2]);
            Assert.Contains("Images are identical.", compare.StdOut, StringComparison.Ordinal);
            long qcowAllocated = await AllocatedBytesAsync(qcow2);
            Assert.True(qcowAllocated <= sourceDataBytes + 2 * M, $"copy.qcow2 has {qcowAllocated} bytes allocated for {sourceDataBytes} bytes of data");
            await AssertDataWithinSourceDataAsync(qcow2, "qcow2");

            await server.AssertNoErrorsAsync();
        }
    }

    private static void CreateSparse(string path)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        file.SetLength(Size);
        var random = new Random(61);
        foreach ((long offset, long length, bool zeroes) in s_regions)
        {
            byte[] data = new byte[length];
            if (!zeroes)
            {
                random.NextBytes(data);
                for (int i = 0; i < data.Length; i += 512)
                {
                    data[i] |= 1; // no all-zero block that qemu-img could skip
                }
            }
            file.Position = offset;
            file.Write(data);
        }
        file.Flush(flushToDisk: true);
    }

    private static async Task AssertDataWithinSourceDataAsync(string path, string format)
    {
        ToolResult map = await ExternalTool.RunCheckedAsync("qemu-img", ["map", "--output=json", "-f", format, path]);
        foreach (MapRange range in ParseMap(map.StdOut).Where(r => r.Data))
        {
            if (format == "raw" && range.Start == 0 && range.Length == 4096)
            {
                continue; // qemu's file driver allocates the first block of every raw file it creates (alignment probing)
            }
            Assert.True(s_regions.Any(r => range.Start >= r.Offset && range.Start + range.Length <= r.Offset + r.Length),
                $"{format} copy has data at {range.Start}+{range.Length}, where the source has a hole:{Environment.NewLine}{map.StdOut}");
        }
    }

    private sealed record MapRange(long Start, long Length, bool Data, bool Zero);

    private static string Describe(MapRange r) => $"{r.Start}+{r.Length}:{(r.Data ? "data" : "nodata")},{(r.Zero ? "zero" : "nonzero")}";

    private static List<MapRange> ParseMap(string json)
    {
        using JsonDocument document = JsonDocument.Parse(json);
        var ranges = new List<MapRange>();
        foreach (JsonElement e in document.RootElement.EnumerateArray())
        {
            var range = new MapRange(e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64(),
                e.GetProperty("data").GetBoolean(), e.GetProperty("zero").GetBoolean());
            // qemu-img splits ranges at its own boundaries (and by depth or offset); merge equal neighbours.
            if (ranges.Count > 0 && ranges[^1] is { } last && last.Data == range.Data && last.Zero == range.Zero && last.Start + last.Length == range.Start)
            {
                ranges[^1] = last with { Length = last.Length + range.Length };
            }
            else
            {
                ranges.Add(range);
            }
        }
        return ranges;
    }

    private static async Task<long> AllocatedBytesAsync(string path)
    {
        ToolResult stat = await ExternalTool.RunCheckedAsync("stat", ["-c", "%b %B", path]);
        string[] parts = stat.StdOut.Trim().Split(' ');
        return long.Parse(parts[0], CultureInfo.InvariantCulture) * long.Parse(parts[1], CultureInfo.InvariantCulture);
    }
}
