namespace NbdFast.Protocol;

/// <summary>Information types carried by NBD_REP_INFO replies and requested by INFO/GO.</summary>
public enum NbdInfoType : ushort
{
    /// <summary>NBD_INFO_EXPORT: size and transmission flags (mandatory before ACK).</summary>
    Export = 0,
    /// <summary>NBD_INFO_NAME: the canonical export name.</summary>
    Name = 1,
    /// <summary>NBD_INFO_DESCRIPTION: human-readable description.</summary>
    Description = 2,
    /// <summary>NBD_INFO_BLOCK_SIZE: minimum, preferred and maximum payload sizes.</summary>
    BlockSize = 3,
}
