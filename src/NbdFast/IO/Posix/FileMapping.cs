using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace NbdFast.IO.Posix;

/// <summary>
/// A read-only shared mapping of a whole page-cache file, so a READ reply can go to the socket straight from
/// the page cache: the send's one copy instead of a read into a buffer and a second copy out of it.
/// Only the kernel ever touches these pages (inside sendmsg): were the file truncated under the mapping, the
/// copy would fail with EFAULT rather than raise SIGBUS, and the sender reads the rest the ordinary way.
/// It is a <see cref="SafeHandle"/> so every connection sending from it holds a reference: the pages stay
/// mapped until the last send that points into them has completed, whenever the device is disposed.
/// </summary>
internal sealed unsafe partial class FileMapping : SafeHandle
{
    private const int PageSize = 4096;

    private const long SysCachestat = 451;   // the same number on every architecture (the unified syscall table)
    private const int PreciseChecksAfterMiss = 4096;
    private const int DisagreementsBeforeRefusing = 64;

    // The file, for cachestat. The mapping holds a reference on its handle, so the descriptor stays open (and its
    // number cannot come to name another file) until the last connection sending from the mapping lets go,
    // even when the device is disposed first.
    private readonly SafeFileHandle _file;
    private readonly int _fd;

    private bool _cachestatRefused;
    // Shared by the reactors of every connection reading this file: racing updates only shift when mincore decides.
    private int _preciseChecksLeft;
    private int _disagreements;

    private FileMapping(nint address, long length, SafeFileHandle file) : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
        _file = file;
        _fd = (int)file.DangerousGetHandle();
    }

    /// <summary>Bytes mapped: the file's size when it was mapped.</summary>
    public long Length { get; }

    public byte* Pointer => (byte*)handle;

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>Maps <paramref name="length"/> bytes of <paramref name="file"/>; null when the kernel refuses (the caller reads instead).</summary>
    public static FileMapping? TryMap(SafeFileHandle file, long length)
    {
        if (length <= 0 || !OperatingSystem.IsLinux())
        {
            return null;
        }
        bool added = false;
        file.DangerousAddRef(ref added);
        void* address = mmap(null, (size_t)(ulong)length, PROT_READ, MAP_SHARED, (int)file.DangerousGetHandle(), 0);
        if (address == MAP_FAILED)
        {
            file.DangerousRelease();
            return null;
        }
        return new FileMapping((nint)address, length, file);
    }

    /// <summary>Test hook: check residency with mincore only, as on kernels without cachestat (before 6.5).</summary>
    internal void RefuseCachestat() => _cachestatRefused = true;

    /// <summary>
    /// True when every page of the range is in the page cache, so a send from it cannot wait for the disk on
    /// the reactor's thread. A page evicted right after the check costs one synchronous read, no error.
    /// cachestat(2) answers from the file's page cache alone; mincore(2) also looks up the mapping and walks its
    /// page tables, and cost three times as much per 4 KiB check here (1.4 µs against 0.47 µs; two-job 4 KiB
    /// random reads over TCP: 0.95× the server CPU per I/O in 8 interleaved pairs). But cachestat also counts
    /// pages that readahead is still reading in, which mincore does not, and on overlayfs it sees the overlay's
    /// own empty cache rather than the real file's. So after any miss mincore alone decides for the next
    /// <see cref="PreciseChecksAfterMiss"/> checks (a file being read in keeps missing), and a mapping where
    /// mincore keeps finding cached what cachestat called missing stops asking cachestat.
    /// </summary>
    public bool IsResident(long offset, long length)
    {
        long first = offset & ~(PageSize - 1L);
        long pages = (offset + length - first + PageSize - 1) / PageSize;
        if (!_cachestatRefused && _preciseChecksLeft <= 0)
        {
            long cached = CachedPages(first, pages);
            if (cached == pages)
            {
                return true;
            }
            if (cached >= 0)
            {
                _preciseChecksLeft = PreciseChecksAfterMiss;
                bool resident = IsResidentByMincore(first, pages);
                if (resident && ++_disagreements >= DisagreementsBeforeRefusing)
                {
                    _cachestatRefused = true;
                }
                return resident;
            }
            // ENOSYS (before 6.5), EPERM (a seccomp filter, or a file this process may not write to): mincore.
            _cachestatRefused = true;
        }
        if (_preciseChecksLeft > 0)
        {
            _preciseChecksLeft--;
        }
        if (IsResidentByMincore(first, pages))
        {
            return true;
        }
        _preciseChecksLeft = PreciseChecksAfterMiss;
        return false;
    }

    /// <summary>cachestat's count of the range's pages in the page cache; -1 when the kernel refuses the call.</summary>
    internal long CachedPages(long first, long pages)
    {
        CachestatRange range = new() { Offset = (ulong)first, Length = (ulong)(pages * PageSize) };
        Cachestat stat;
        return RawSyscall4(SysCachestat, _fd, (long)&range, (long)&stat, 0) == 0 ? (long)stat.Cached : -1;
    }

    private bool IsResidentByMincore(long first, long pages)
    {
        // One byte per page: 8 KiB covers a 32 MiB request (the largest payload) at any alignment.
        Span<byte> vector = pages <= 8200 ? stackalloc byte[(int)pages] : new byte[pages];
        fixed (byte* v = vector)
        {
            if (mincore(Pointer + first, (size_t)(ulong)(pages * PageSize), v) != 0)
            {
                return false;
            }
        }
        foreach (byte page in vector)
        {
            if ((page & 1) == 0)
            {
                return false;
            }
        }
        return true;
    }

    protected override bool ReleaseHandle()
    {
        bool unmapped = munmap((void*)handle, (size_t)(ulong)Length) == 0;
        _file.DangerousRelease();
        return unmapped;
    }

    private struct CachestatRange
    {
        public ulong Offset;
        public ulong Length;
    }

    private struct Cachestat
    {
        public ulong Cached;
        public ulong Dirty;
        public ulong Writeback;
        public ulong Evicted;
        public ulong RecentlyEvicted;
    }

    /// <summary>Once per page-cache READ, so no SetLastError bookkeeping: a failure only switches to mincore.</summary>
    [LibraryImport("libc", EntryPoint = "syscall")]
    private static partial long RawSyscall4(long number, long a1, long a2, long a3, long a4);
}
