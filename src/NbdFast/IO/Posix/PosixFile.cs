using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace NbdFast.IO.Posix;

/// <summary>
/// The few file syscalls .NET does not expose (fdatasync, fallocate modes, SEEK_DATA/SEEK_HOLE, fadvise,
/// block-device ioctls), wrapped behind safe methods. Failures come back as <see cref="IOException"/> whose
/// HResult is the errno, which the device layer maps to a wire error.
/// </summary>
internal static unsafe partial class PosixFile
{
    private const int SeekData = 3;
    private const int SeekHole = 4;
    private const int FallocKeepSize = 0x01;
    private const int FallocPunchHole = 0x02;
    private const int FallocZeroRange = 0x10;
    private const int PosixFadvWillNeed = 3;
    private const int Enxio = 6;
    private const uint BlkGetSize64 = 0x80081272;
    private const uint BlkSszGet = 0x1268;
    private const uint BlkDiscard = 0x1277;
    private const uint BlkZeroOut = 0x127f;

    private const int ODirect = 0x4000;
    private const int OCloexec = 0x80000;
    private const int ORdOnly = 0;
    private const int ORdWr = 2;
    private const int OTmpFile = 0x410000; // __O_TMPFILE | O_DIRECTORY
    private const int UserReadWrite = 0x180; // 0600

    /// <summary>
    /// Creates a nameless read-write file in <paramref name="directory"/> (O_TMPFILE): it never appears in
    /// the directory, so nothing is left behind however the process ends. Returns null when the filesystem or
    /// kernel cannot (the caller then creates a named file and unlinks it at once).
    /// </summary>
    public static SafeFileHandle? TryOpenAnonymous(string directory)
    {
        int fd;
        fixed (byte* name = System.Text.Encoding.UTF8.GetBytes(directory + "\0"))
        {
            fd = OpenWithModeNative(name, OTmpFile | ORdWr | OCloexec, UserReadWrite);
        }
        if (fd >= 0)
        {
            return new SafeFileHandle(fd, ownsHandle: true);
        }
        int error = Marshal.GetLastPInvokeError();
        // EOPNOTSUPP, EISDIR (kernel without O_TMPFILE), EINVAL: fall back; anything else is a real failure.
        return error is 95 or 21 or 22 ? null : throw Error(error);
    }

    /// <summary>Opens <paramref name="path"/> with O_DIRECT (no page cache); .NET's File API cannot ask for it.</summary>
    public static SafeFileHandle OpenDirect(string path, bool readOnly)
    {
        int fd;
        fixed (byte* name = System.Text.Encoding.UTF8.GetBytes(path + "\0"))
        {
            fd = OpenNative(name, (readOnly ? ORdOnly : ORdWr) | ODirect | OCloexec);
        }
        if (fd < 0)
        {
            throw Error(Marshal.GetLastPInvokeError());
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// The alignment O_DIRECT needs on this file, found by trying: a 512-byte aligned read works on
    /// 512-byte-sector devices and fails with EINVAL on 4 KiB ones.
    /// </summary>
    public static int ProbeDirectAlignment(SafeFileHandle handle)
    {
        void* buffer = NativeMemory.AlignedAlloc(4096, 4096);
        try
        {
            nint result = PreadNative(Fd(handle), buffer, 512, 0);
            return result >= 0 ? 512 : 4096;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// <summary>pread into native memory; returns bytes read (0 at end of file).</summary>
    public static int Pread(SafeFileHandle handle, byte* buffer, int count, long offset)
    {
        nint result = PreadNative(Fd(handle), buffer, (nuint)count, offset);
        return result < 0 ? throw Error(Marshal.GetLastPInvokeError()) : (int)result;
    }

    /// <summary>pwrite from native memory; returns bytes written.</summary>
    public static int Pwrite(SafeFileHandle handle, byte* buffer, int count, long offset)
    {
        int result = PwriteOrErrno(Fd(handle), buffer, count, offset);
        return result < 0 ? throw Error(-result) : result;
    }

    /// <summary>pwrite for callers that must not throw: the bytes written, or -errno.</summary>
    public static int PwriteOrErrno(int fd, byte* buffer, int count, long offset)
    {
        nint result = PwriteNative(fd, buffer, (nuint)count, offset);
        return result < 0 ? -Marshal.GetLastPInvokeError() : (int)result;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static partial int OpenNative(byte* path, int flags);

    // open is variadic; the mode travels in the third integer register either way on Linux x86-64 and arm64.
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static partial int OpenWithModeNative(byte* path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint PreadNative(int fd, void* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint PwriteNative(int fd, void* buffer, nuint count, long offset);

    /// <summary>True when <paramref name="path"/> itself (not a link target) is a unix domain socket.</summary>
    public static bool IsSocket(string path)
    {
        stat st;
        fixed (byte* name = System.Text.Encoding.UTF8.GetBytes(path + "\0"))
        {
            if (lstat(name, &st) != 0)
            {
                return false;
            }
        }
        return (st.st_mode & S_IFMT) == S_IFSOCK;
    }

    public static bool IsBlockDevice(SafeFileHandle handle)
    {
        stat st;
        Check(fstat(Fd(handle), &st));
        return (st.st_mode & S_IFMT) == S_IFBLK;
    }

    /// <summary>True when sysfs says the block device behind <paramref name="handle"/> spins.</summary>
    public static bool IsRotational(SafeFileHandle handle)
    {
        stat st;
        Check(fstat(Fd(handle), &st));
        ulong rdev = (ulong)st.st_rdev;
        ulong major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfffUL);
        ulong minor = (rdev & 0xff) | ((rdev >> 12) & ~0xffUL);
        string device = $"/sys/dev/block/{major}:{minor}";
        // A partition has no queue of its own; its parent disk's applies.
        foreach (string queue in new[] { device + "/queue/rotational", device + "/../queue/rotational" })
        {
            if (File.Exists(queue))
            {
                return File.ReadAllText(queue).Trim() == "1";
            }
        }
        return false;
    }

    /// <summary>Bytes the filesystem has allocated to the file (st_blocks counts 512-byte units).</summary>
    public static long AllocatedBytes(SafeFileHandle handle)
    {
        stat st;
        Check(fstat(Fd(handle), &st));
        return (long)st.st_blocks * 512;
    }

    public static long BlockDeviceSize(SafeFileHandle handle)
    {
        ulong size;
        ThrowIfError(Ioctl(Fd(handle), BlkGetSize64, &size));
        return (long)size;
    }

    public static int LogicalSectorSize(SafeFileHandle handle)
    {
        int size;
        ThrowIfError(Ioctl(Fd(handle), BlkSszGet, &size));
        return size;
    }

    public static void DataSync(SafeFileHandle handle) => Check(fdatasync(Fd(handle)));

    /// <summary>Deallocates a range of a regular file, keeping its size. Returns false when the filesystem cannot.</summary>
    public static bool TryPunchHole(SafeFileHandle handle, long offset, long length) =>
        TryFallocate(handle, FallocPunchHole | FallocKeepSize, offset, length);

    /// <summary>Zeroes a range of a regular file without writing data. Returns false when the filesystem cannot.</summary>
    public static bool TryZeroRange(SafeFileHandle handle, long offset, long length) =>
        TryFallocate(handle, FallocZeroRange | FallocKeepSize, offset, length);

    /// <summary>BLKDISCARD on a block device.</summary>
    public static bool TryDiscard(SafeFileHandle handle, long offset, long length) => TryBlockRangeIoctl(handle, BlkDiscard, offset, length);

    /// <summary>BLKZEROOUT on a block device.</summary>
    public static bool TryZeroOut(SafeFileHandle handle, long offset, long length) => TryBlockRangeIoctl(handle, BlkZeroOut, offset, length);

    public static void AdviseWillNeed(SafeFileHandle handle, long offset, long length) =>
        posix_fadvise(Fd(handle), offset, length, PosixFadvWillNeed);

    /// <summary>The next data offset at or after <paramref name="offset"/>, or -1 when only a hole remains.</summary>
    public static long SeekNextData(SafeFileHandle handle, long offset) => SeekOrEnd(handle, offset, SeekData);

    /// <summary>The next hole offset at or after <paramref name="offset"/> (end of file counts as a hole).</summary>
    public static long SeekNextHole(SafeFileHandle handle, long offset) => SeekOrEnd(handle, offset, SeekHole);

    private static long SeekOrEnd(SafeFileHandle handle, long offset, int whence)
    {
        long result = lseek(Fd(handle), offset, whence);
        if (result < 0)
        {
            int error = errno;
            if (error == Enxio)
            {
                return -1;
            }
            throw Error(error);
        }
        return result;
    }

    private static bool TryFallocate(SafeFileHandle handle, int mode, long offset, long length)
    {
        if (fallocate(Fd(handle), mode, offset, length) == 0)
        {
            return true;
        }
        int error = errno;
        if (error is 95 or 22 or 38) // EOPNOTSUPP, EINVAL (mode unknown to the filesystem), ENOSYS
        {
            return false;
        }
        throw Error(error);
    }

    private static bool TryBlockRangeIoctl(SafeFileHandle handle, uint request, long offset, long length)
    {
        ulong* range = stackalloc ulong[2] { (ulong)offset, (ulong)length };
        int error = Ioctl(Fd(handle), request, range);
        if (error == 0)
        {
            return true;
        }
        if (error is 95 or 22 or 25) // EOPNOTSUPP, EINVAL, ENOTTY
        {
            return false;
        }
        throw Error(error);
    }

    private static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    private static void Check(int result)
    {
        if (result < 0)
        {
            throw Error(errno);
        }
    }

    private static void ThrowIfError(int error)
    {
        if (error != 0)
        {
            throw Error(error);
        }
    }

    private static IOException Error(int error) => new(Marshal.GetPInvokeErrorMessage(error), error);

    // Tmds.LibC's ioctl takes an int argument; the block ioctls need a pointer.
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int IoctlNative(int fd, nuint request, void* argument);

    /// <summary>Returns 0 or the errno of the failure.</summary>
    private static int Ioctl(int fd, uint request, void* argument) =>
        IoctlNative(fd, request, argument) == 0 ? 0 : Marshal.GetLastPInvokeError();
}
