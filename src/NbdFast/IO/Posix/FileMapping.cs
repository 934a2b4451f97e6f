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
internal sealed unsafe class FileMapping : SafeHandle
{
    private const int PageSize = 4096;

    private FileMapping(nint address, long length) : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
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
        void* address = mmap(null, (size_t)(ulong)length, PROT_READ, MAP_SHARED, (int)file.DangerousGetHandle(), 0);
        return address == MAP_FAILED ? null : new FileMapping((nint)address, length);
    }

    /// <summary>
    /// True when every page of the range is in the page cache (mincore), so a send from it cannot wait for the
    /// disk on the reactor's thread. A page evicted right after the check costs one synchronous read, no error.
    /// </summary>
    public bool IsResident(long offset, long length)
    {
        long first = offset & ~(PageSize - 1L);
        long pages = (offset + length - first + PageSize - 1) / PageSize;
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

    protected override bool ReleaseHandle() => munmap((void*)handle, (size_t)(ulong)Length) == 0;
}
