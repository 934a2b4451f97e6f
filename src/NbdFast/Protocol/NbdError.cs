namespace NbdFast.Protocol;

/// <summary>Error values on the wire. These are the spec's fixed numbers, never host errno values.</summary>
public enum NbdError : uint
{
    /// <summary>Success.</summary>
    None = 0,
    /// <summary>NBD_EPERM: operation not permitted.</summary>
    Perm = 1,
    /// <summary>NBD_EIO: input/output error.</summary>
    IO = 5,
    /// <summary>NBD_ENOMEM: cannot allocate memory.</summary>
    NoMemory = 12,
    /// <summary>NBD_EINVAL: invalid argument.</summary>
    Invalid = 22,
    /// <summary>NBD_ENOSPC: no space left on device.</summary>
    NoSpace = 28,
    /// <summary>NBD_EOVERFLOW: value too large.</summary>
    Overflow = 75,
    /// <summary>NBD_ENOTSUP: operation not supported.</summary>
    NotSupported = 95,
    /// <summary>NBD_ESHUTDOWN: the server is shutting down.</summary>
    Shutdown = 108,
}
