using System.Security.Cryptography;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>--offset/--size serve a sub-range of a file (a partition); nothing outside it is ever read or written.</summary>
public sealed class SubRangeTests
{
    private const int FileSize = 4 << 20;
    private const int Offset = 1 << 20;
    private const int Size = 2 << 20;

    private const string EdgeScript = """
        import nbd, sys
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_BOUNDS)   # let the server judge the range
        size = h.get_size()
        print("size", size, flush=True)
        before = h.pread(4096, size - 4096)
        print("tail", before[:8].hex(), flush=True)
        h.pwrite(b"\xee" * 4096, size - 4096)
        assert h.pread(4096, size - 4096) == b"\xee" * 4096
        for off, length in ((size, 1), (size - 1, 2)):
            try:
                h.pwrite(b"\x01" * length, off)
                print("past-end write accepted", off, flush=True)
            except nbd.Error as e:
                print("past-end refused errno", e.errno, flush=True)
        h.shutdown()
        """;

    [Theory(Timeout = 60_000)]
    [InlineData(Engine.Auto)]
    [InlineData(Engine.Sockets)]
    public async Task OffsetAndSize_ShowOnlyTheRange_AndKeepTheRestOfTheFile(Engine engine)
    {
        using var temp = new TempDirectory();
        string path = temp.File("disk.img");
        byte[] original = RandomNumberGenerator.GetBytes(FileSize);
        File.WriteAllBytes(path, original);

        using NbdfastProcess server = await Transport.Unix.StartAsync(engine, "--writable", "--offset", "1M", "--size", "2M", path);
        ToolResult info = await ExternalTool.RunAsync("nbdinfo", ["--size", server.Uri()], TimeSpan.FromSeconds(20));
        Assert.True(info.Succeeded, info.Describe());
        Assert.Equal(Size.ToString(System.Globalization.CultureInfo.InvariantCulture), info.Stdout.Trim());

        ToolResult run = await ExternalTool.PythonAsync(EdgeScript, [server.Uri()], TimeSpan.FromSeconds(30));
        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Contains("tail " + Convert.ToHexStringLower(original.AsSpan(Offset + Size - 4096, 8)), run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("past-end write accepted", run.Stdout, StringComparison.Ordinal);
        Assert.Equal(2, run.Stdout.Split("past-end refused errno ENOSPC").Length - 1);   // ENOSPC, as for any write past the end

        Assert.Equal(0, await server.StopAsync());
        byte[] after = File.ReadAllBytes(path);
        Assert.True(after.AsSpan(0, Offset + Size - 4096).SequenceEqual(original.AsSpan(0, Offset + Size - 4096)), "bytes before the written block changed");
        Assert.All(after.AsSpan(Offset + Size - 4096, 4096).ToArray(), b => Assert.Equal(0xee, b));
        Assert.True(after.AsSpan(Offset + Size).SequenceEqual(original.AsSpan(Offset + Size)), "bytes after the range changed");
    }

    [Theory(Timeout = 30_000)]
    [InlineData("5M", null)]
    [InlineData("1M", "4M")]
    public async Task RangeOutsideTheFile_IsAStartUpError(string offset, string? size)
    {
        using var temp = new TempDirectory();
        string path = temp.File("disk.img");
        File.WriteAllBytes(path, new byte[FileSize]);
        string[] arguments = size is null ? ["--offset", offset, path] : ["--offset", offset, "--size", size, path];

        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, arguments, TimeSpan.FromSeconds(10));

        Assert.Equal(2, run.ExitCode);
        string[] lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith("nbdfast: ", StringComparison.Ordinal), run.Describe());
    }
}
