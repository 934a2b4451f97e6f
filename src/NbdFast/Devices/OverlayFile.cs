using Microsoft.Win32.SafeHandles;
using NbdFast.IO.Posix;

namespace NbdFast.Devices;

/// <summary>
/// The scratch file behind a <see cref="CopyOnWriteDevice"/>: sparse, as large as the device, laid out at the
/// device's own offsets, and without a name from the moment it exists (O_TMPFILE, or created and unlinked at
/// once where the filesystem lacks it), so even kill -9 leaves nothing behind. Closing it gives its space back.
/// </summary>
internal sealed class OverlayFile : IDisposable
{
    private readonly SafeFileHandle _handle;

    private OverlayFile(SafeFileHandle handle, bool anonymous)
    {
        _handle = handle;
        Anonymous = anonymous;
    }

    /// <summary>True when the file was opened with O_TMPFILE (never had a name).</summary>
    public bool Anonymous { get; }

    /// <summary>Creates a sparse overlay of <paramref name="size"/> bytes in <paramref name="directory"/>.</summary>
    /// <param name="directory">An existing directory.</param>
    /// <param name="size">The device size.</param>
    /// <param name="tryAnonymous">Try O_TMPFILE first (false only to test the fallback).</param>
    public static OverlayFile Create(string directory, long size, bool tryAnonymous = true)
    {
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"The overlay directory {directory} does not exist.");
        }
        SafeFileHandle? handle = tryAnonymous ? PosixFile.TryOpenAnonymous(directory) : null;
        bool anonymous = handle is not null;
        if (handle is null)
        {
            string path = Path.Combine(directory, $".nbdfast-overlay-{Guid.NewGuid():N}");
            handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            try
            {
                File.Delete(path);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }
        try
        {
            RandomAccess.SetLength(handle, size);
            return new OverlayFile(handle, anonymous);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public async ValueTask ReadAsync(long offset, Memory<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int read = await RandomAccess.ReadAsync(_handle, destination, offset).ConfigureAwait(false);
            if (read == 0)
            {
                // The file is sized to the device, so this cannot happen; zeroes are what a hole holds anyway.
                destination.Span.Clear();
                return;
            }
            destination = destination[read..];
            offset += read;
        }
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source) => RandomAccess.WriteAsync(_handle, source, offset);

    /// <summary>
    /// Releases the space of a range whose clusters now read as zeroes; best effort (the map is what counts).
    /// Off the caller's thread: punching a large range can take a while.
    /// </summary>
    public Task ReleaseAsync(long offset, long length) => Task.Run(() => PosixFile.TryPunchHole(_handle, offset, length));

    /// <summary>Releases the whole file's space at once (the caller has reset the map); best effort.</summary>
    public void ReleaseAll() => PosixFile.TryPunchHole(_handle, 0, RandomAccess.GetLength(_handle));

    /// <summary>fdatasync, off the caller's thread (which may be an io_uring reactor).</summary>
    public Task SyncAsync() => Task.Run(() => PosixFile.DataSync(_handle));

    /// <summary>Bytes the filesystem has allocated to the overlay (st_blocks * 512); for tests and statistics.</summary>
    public long AllocatedBytes => PosixFile.AllocatedBytes(_handle);

    public void Dispose() => _handle.Dispose();
}
