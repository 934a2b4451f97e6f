using NbdFast.Protocol;

namespace NbdFast.Devices;

/// <summary>A device operation failed with a specific NBD error; only that request fails.</summary>
public sealed class BlockDeviceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public BlockDeviceException(NbdError error, string message, Exception? inner = null) : base(message, inner) => Error = error;

    /// <summary>The error sent to the client.</summary>
    public NbdError Error { get; }

    /// <summary>Maps any exception thrown by a device to the error sent on the wire.</summary>
    public static NbdError ToNbdError(Exception exception) => exception switch
    {
        BlockDeviceException device => device.Error,
        IOException io => FromErrno(io.HResult),
        UnauthorizedAccessException => NbdError.Perm,
        NotSupportedException => NbdError.NotSupported,
        OutOfMemoryException => NbdError.NoMemory,
        _ => NbdError.IO,
    };

    /// <summary>Maps a Linux errno to the wire error (never the host number itself).</summary>
    public static NbdError FromErrno(int errno) => errno switch
    {
        1 or 13 or 30 => NbdError.Perm,          // EPERM, EACCES, EROFS
        12 => NbdError.NoMemory,                   // ENOMEM
        22 => NbdError.Invalid,                    // EINVAL
        27 or 28 or 122 => NbdError.NoSpace,       // EFBIG, ENOSPC, EDQUOT
        75 => NbdError.Overflow,                   // EOVERFLOW
        95 => NbdError.NotSupported,               // EOPNOTSUPP
        108 => NbdError.Shutdown,                  // ESHUTDOWN
        _ => NbdError.IO,
    };
}
