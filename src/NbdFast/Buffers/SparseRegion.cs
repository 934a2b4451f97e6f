using System.Runtime.InteropServices;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace NbdFast.Buffers;

/// <summary>
/// One flat, zero-filled range of virtual memory that costs physical memory only where it is written: the
/// store behind a memory export. On Linux it is an anonymous private mapping made with MAP_NORESERVE, so even a
/// device far larger than RAM maps, and <see cref="Discard"/> hands whole pages back with MADV_DONTNEED (they
/// read as zeroes afterwards). Elsewhere it is zeroed native memory, which those systems also commit lazily,
/// and a discard only writes zeroes.
/// Being one range, a byte's address is base + offset: the I/O path needs no lookup table, whose random 4 KiB
/// probes missed the cache on every request (the table of 64 KiB chunks this replaced was 128 KiB per GiB).
/// The range is never unmapped while anything can still reach its owner: transports point the kernel straight
/// at it and hold the owning device until their sends complete, so only the finalizer of this handle unmaps it.
/// </summary>
internal sealed unsafe class SparseRegion : SafeHandle
{
    // The system's page, not a constant: madvise takes only page-aligned ranges (64 KiB pages on some arm64 kernels).
    private static readonly long PageSize = Environment.SystemPageSize;

    private readonly bool _mapped;
    private readonly nuint _reserved;

    /// <summary>Reserves <paramref name="length"/> zeroed bytes; throws <see cref="OutOfMemoryException"/> when the system refuses.</summary>
    public SparseRegion(long length) : base(IntPtr.Zero, ownsHandle: true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        // A zero-length device still gets a valid (empty) range to point at.
        _reserved = (nuint)Math.Max(length, 1);
        if (OperatingSystem.IsLinux())
        {
            void* address = mmap(null, (size_t)(ulong)_reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (address == MAP_FAILED)
            {
                throw new OutOfMemoryException($"The kernel refused to reserve {length} bytes of address space (errno {Marshal.GetLastPInvokeError()}).");
            }
            _mapped = true;
            SetHandle((nint)address);
        }
        else
        {
            SetHandle((nint)NativeMemory.AllocZeroed(_reserved));
        }
    }

    public long Length { get; }

    /// <summary>Byte 0; valid for as long as this region is reachable.</summary>
    public byte* Pointer => (byte*)handle;

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The bytes at [<paramref name="offset"/>, +<paramref name="count"/>); the caller has checked the range.</summary>
    public Span<byte> Bytes(long offset, int count)
    {
        System.Diagnostics.Debug.Assert(offset >= 0 && count >= 0 && offset <= Length - count, "range outside the region");
        return new Span<byte>(Pointer + offset, count);
    }

    /// <summary>
    /// Zeroes [<paramref name="offset"/>, +<paramref name="length"/>). On Linux the whole pages inside it go back
    /// to the system and only the partial pages at its ends are written.
    /// </summary>
    public void Discard(long offset, long length)
    {
        System.Diagnostics.Debug.Assert(offset >= 0 && length >= 0 && offset <= Length - length, "range outside the region");
        long end = offset + length;
        long firstPage = (offset + PageSize - 1) & ~(PageSize - 1);
        long lastPage = end & ~(PageSize - 1);
        if (!_mapped || lastPage <= firstPage)
        {
            Clear(offset, length);
            return;
        }
        Clear(offset, firstPage - offset);
        if (madvise(Pointer + firstPage, (size_t)(ulong)(lastPage - firstPage), MADV_DONTNEED) != 0)
        {
            // Not expected for an anonymous private mapping; zeroes are what the caller needs either way.
            Clear(firstPage, lastPage - firstPage);
        }
        Clear(lastPage, end - lastPage);
    }

    protected override bool ReleaseHandle()
    {
        if (_mapped)
        {
            munmap((void*)handle, (size_t)(ulong)_reserved);
        }
        else
        {
            NativeMemory.Free((void*)handle);
        }
        return true;
    }

    private void Clear(long offset, long length)
    {
        if (length > 0)
        {
            NativeMemory.Clear(Pointer + offset, (nuint)length);
        }
    }
}
