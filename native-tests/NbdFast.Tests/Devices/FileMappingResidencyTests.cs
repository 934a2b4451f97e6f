using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using NbdFast.IO.Posix;

namespace NbdFast.Tests.Devices;

/// <summary>
/// <see cref="FileMapping.IsResident"/> decides whether a READ may be sent straight from the page cache (a send
/// from a page not cached would wait for the disk on the reactor's thread). It must follow the page cache exactly,
/// both through cachestat(2) and through the mincore(2) fallback that kernels before 6.5 take.
/// </summary>
public sealed class FileMappingResidencyTests : IDisposable
{
    private const int Size = 1024 * 1024;
    private const int FadviseRandom = 1;     // POSIX_FADV_RANDOM: no readahead, a read caches only what it asks for
    private const int FadviseDontNeed = 4;   // POSIX_FADV_DONTNEED: drop the file's clean pages

    // Beside the test binaries, on the checkout's disk: a tmpfs temp dir would keep every page whatever we advise.
    private readonly string _dir = Directory.CreateDirectory(
        Path.Combine(AppContext.BaseDirectory, "mapping-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ResidencyFollowsThePageCache(bool mincoreOnly)
    {
        string path = Path.Combine(_dir, "disk.img");
        using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            byte[] data = new byte[Size];
            new Random(1).NextBytes(data);
            stream.Write(data);
            stream.Flush(flushToDisk: true);   // clean pages, so DONTNEED can drop them
        }
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        Assert.Equal(0, posix_fadvise(file, 0, 0, FadviseRandom));
        Assert.Equal(0, posix_fadvise(file, 0, 0, FadviseDontNeed));
        using FileMapping mapping = FileMapping.TryMap(file, Size)!;
        Assert.NotNull(mapping);
        if (mincoreOnly)
        {
            mapping.RefuseCachestat();
        }

        Assert.False(mapping.IsResident(0, 4096));
        Assert.False(mapping.IsResident(65536, 65536));

        Assert.Equal(65536, RandomAccess.Read(file, new byte[65536], 65536));
        Assert.True(mapping.IsResident(65536, 65536));
        Assert.True(mapping.IsResident(65536 + 100, 4000));        // unaligned, inside cached pages
        Assert.False(mapping.IsResident(65536, 65536 + 1));        // one byte into an uncached page
        Assert.False(mapping.IsResident(65536 - 4096, 8192));      // starts in the uncached page before
        Assert.False(mapping.IsResident(Size - 4096, 4096));

        Assert.Equal(0, posix_fadvise(file, 0, 0, FadviseDontNeed));
        Assert.False(mapping.IsResident(65536, 4096));
    }

    /// <summary>cachestat itself (this kernel has it: 6.5 and later) counts exactly the pages a read brought in.</summary>
    [Fact]
    public void CachestatCountsTheCachedPages()
    {
        string path = Path.Combine(_dir, "disk.img");
        using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(new byte[Size]);
            stream.Flush(flushToDisk: true);
        }
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        Assert.Equal(0, posix_fadvise(file, 0, 0, FadviseRandom));
        Assert.Equal(0, posix_fadvise(file, 0, 0, FadviseDontNeed));
        using FileMapping mapping = FileMapping.TryMap(file, Size)!;

        Assert.Equal(0, mapping.CachedPages(0, Size / 4096));
        Assert.Equal(8192, RandomAccess.Read(file, new byte[8192], 3 * 4096));
        Assert.Equal(2, mapping.CachedPages(0, Size / 4096));
        Assert.Equal(2, mapping.CachedPages(3 * 4096, 2));
        Assert.Equal(1, mapping.CachedPages(4 * 4096, 5));
        Assert.Equal(0, mapping.CachedPages(5 * 4096, 5));
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int posix_fadvise(SafeFileHandle fd, long offset, long length, int advice);
}
