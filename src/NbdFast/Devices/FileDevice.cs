using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using NbdFast.IO.Posix;
using NbdFast.Protocol;

namespace NbdFast.Devices;

/// <summary>
/// A regular file or a block device, accessed with pread/pwrite through the page cache. FLUSH and FUA use
/// fdatasync; TRIM punches holes (BLKDISCARD on block devices); WRITE_ZEROES uses fallocate ZERO_RANGE or
/// punch-hole (BLKZEROOUT on block devices) and falls back to writing zeroes; block status uses
/// SEEK_DATA/SEEK_HOLE. One instance may serve many connections: they share the page cache, so a flush on
/// one covers writes completed on all (multi-conn).
/// </summary>
public sealed class FileDevice : IBlockDevice
{
    private const int ZeroBufferSize = 1024 * 1024;
    private static readonly byte[] s_zeroes = new byte[ZeroBufferSize];

    private readonly SafeFileHandle _handle;
    private readonly bool _isBlockDevice;
    private readonly DirectFileIo? _direct;
    private readonly object _mappingLock = new();
    private FileMapping? _mapping;
    private bool _mappingTried;
    private bool _disposed;

    private FileDevice(SafeFileHandle handle, string path, bool readOnly, uint maxPayload, bool direct)
    {
        _handle = handle;
        Path = path;
        _isBlockDevice = PosixFile.IsBlockDevice(handle);
        Size = _isBlockDevice ? PosixFile.BlockDeviceSize(handle) : RandomAccess.GetLength(handle);
        if (direct)
        {
            int alignment = _isBlockDevice ? PosixFile.LogicalSectorSize(handle) : PosixFile.ProbeDirectAlignment(handle);
            if (Size % alignment != 0)
            {
                throw new ArgumentException($"{path}: O_DIRECT needs a size that is a multiple of {alignment} bytes");
            }
            _direct = new DirectFileIo(handle, alignment, WriteGate);
        }
        // Through the page cache any byte range works, so the minimum stays 1; the preferred size follows the sector.
        uint sector = _isBlockDevice ? (uint)PosixFile.LogicalSectorSize(handle) : 512;
        BlockSize = new BlockSizeConstraints(1, Math.Max(sector, 4096), maxPayload);
        var capabilities = BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim |
            BlockDeviceCapabilities.WriteZeroes | BlockDeviceCapabilities.FastZero | BlockDeviceCapabilities.Cache |
            BlockDeviceCapabilities.MultiConn;
        if (!_isBlockDevice)
        {
            capabilities |= BlockDeviceCapabilities.BlockStatus;
        }
        if (readOnly)
        {
            capabilities |= BlockDeviceCapabilities.ReadOnly;
        }
        if (_isBlockDevice && PosixFile.IsRotational(handle))
        {
            capabilities |= BlockDeviceCapabilities.Rotational;
        }
        Capabilities = capabilities;
    }

    /// <summary>Opens <paramref name="path"/> (a regular file or a block device).</summary>
    /// <param name="path">The file to serve.</param>
    /// <param name="readOnly">Open without write access; the device then refuses writes.</param>
    /// <param name="maxPayload">Largest READ/WRITE payload advertised and accepted (default 32 MiB).</param>
    /// <param name="direct">
    /// Bypass the page cache (O_DIRECT). Requests of any alignment still work: unaligned ones go through
    /// bounce buffers with read-modify-write.
    /// </param>
    public static FileDevice Open(string path, bool readOnly = false, uint maxPayload = NbdLimits.DefaultMaxPayload, bool direct = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayload, 4096u);
        SafeFileHandle handle = direct
            ? PosixFile.OpenDirect(path, readOnly)
            : File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.ReadWrite);
        try
        {
            return new FileDevice(handle, path, readOnly, maxPayload, direct);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The open file, for transports that submit I/O on it themselves (io_uring).</summary>
    internal SafeFileHandle Handle => _handle;

    /// <summary>
    /// A read-only mapping of the whole device with a reference taken for the caller (release it with
    /// <see cref="SafeHandle.DangerousRelease"/>), so READ replies can be sent from the page cache; mapped once,
    /// on first use. Null with O_DIRECT (the page cache is not the data), after disposal, or when mmap fails.
    /// </summary>
    internal FileMapping? AcquireMapping()
    {
        lock (_mappingLock)
        {
            if (!_mappingTried && !_disposed && _direct is null)
            {
                _mappingTried = true;
                _mapping = FileMapping.TryMap(_handle, Size);
            }
            if (_mapping is null || _disposed)
            {
                return null;
            }
            bool added = false;
            _mapping.DangerousAddRef(ref added);
            return added ? _mapping : null;
        }
    }

    /// <summary>True for a block device (trim and zeroing use ioctls there, not fallocate).</summary>
    internal bool IsBlockDevice => _isBlockDevice;

    /// <summary>True when the file was opened with O_DIRECT.</summary>
    public bool Direct => _direct is not null;

    /// <summary>The alignment O_DIRECT transfers need (1 without O_DIRECT).</summary>
    public int DirectAlignment => _direct?.Alignment ?? 1;

    /// <summary>Orders read-modify-write cycles against other writes on O_DIRECT files.</summary>
    internal DirectWriteGate WriteGate { get; } = new();

    /// <summary>The path this device was opened from.</summary>
    public string Path { get; }

    /// <inheritdoc />
    public long Size { get; }

    /// <inheritdoc />
    public BlockDeviceCapabilities Capabilities { get; }

    /// <inheritdoc />
    public BlockSizeConstraints BlockSize { get; }

    /// <inheritdoc />
    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (_direct is not null)
        {
            await Task.Run(() => _direct.Read(offset, destination.Span), cancellationToken).ConfigureAwait(false);
            return;
        }
        while (!destination.IsEmpty)
        {
            int read = await RandomAccess.ReadAsync(_handle, destination, offset, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                // The file shrank under us: what lies past its end reads as zeroes.
                destination.Span.Clear();
                return;
            }
            destination = destination[read..];
            offset += read;
        }
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        if (_direct is not null)
        {
            await Task.Run(() => _direct.Write(offset, source.Span), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await RandomAccess.WriteAsync(_handle, source, offset, cancellationToken).ConfigureAwait(false);
        }
        if ((flags & WriteFlags.Fua) != 0)
        {
            PosixFile.DataSync(_handle);
        }
    }

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        PosixFile.DataSync(_handle);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask TrimAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        // TRIM is advisory: a filesystem that cannot punch holes simply keeps the data.
        _ = _isBlockDevice ? PosixFile.TryDiscard(_handle, offset, length) : PosixFile.TryPunchHole(_handle, offset, length);
        if ((flags & WriteFlags.Fua) != 0)
        {
            PosixFile.DataSync(_handle);
        }
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public async ValueTask WriteZeroesAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        if (!TryZeroFast(offset, length, mayDeallocate: (flags & WriteFlags.NoHole) == 0))
        {
            if ((flags & WriteFlags.FastZero) != 0)
            {
                throw new BlockDeviceException(NbdError.NotSupported, "zeroing would not be fast");
            }
            await WriteZeroBuffersAsync(offset, length, cancellationToken).ConfigureAwait(false);
        }
        if ((flags & WriteFlags.Fua) != 0)
        {
            PosixFile.DataSync(_handle);
        }
    }

    /// <inheritdoc />
    public ValueTask CacheAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        PosixFile.AdviseWillNeed(_handle, offset, length);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default)
    {
        Span<BlockExtent> output = extents.Span;
        long end = offset + length;
        int written = 0;
        while (offset < end && written < output.Length)
        {
            long data = PosixFile.SeekNextData(_handle, offset);
            if (data < 0 || data >= end)
            {
                output[written++] = new BlockExtent(end - offset, ExtentState.Hole | ExtentState.Zero);
                break;
            }
            if (data > offset)
            {
                output[written++] = new BlockExtent(data - offset, ExtentState.Hole | ExtentState.Zero);
                offset = data;
                continue;
            }
            long hole = Math.Min(PosixFile.SeekNextHole(_handle, offset), end);
            output[written++] = new BlockExtent(hole - offset, ExtentState.Data);
            offset = hole;
        }
        return ValueTask.FromResult(written);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        lock (_mappingLock)
        {
            _disposed = true;
            // Unmapped once the last connection sending from it lets go of its reference.
            _mapping?.Dispose();
        }
        _handle.Dispose();
        return ValueTask.CompletedTask;
    }

    private bool TryZeroFast(long offset, long length, bool mayDeallocate)
    {
        if (_isBlockDevice)
        {
            return PosixFile.TryZeroOut(_handle, offset, length);
        }
        return PosixFile.TryZeroRange(_handle, offset, length) || (mayDeallocate && PosixFile.TryPunchHole(_handle, offset, length));
    }

    private async ValueTask WriteZeroBuffersAsync(long offset, long length, CancellationToken cancellationToken)
    {
        while (length > 0)
        {
            int count = (int)Math.Min(length, ZeroBufferSize);
            await WriteAsync(offset, s_zeroes.AsMemory(0, count), WriteFlags.None, cancellationToken).ConfigureAwait(false);
            offset += count;
            length -= count;
        }
    }
}
