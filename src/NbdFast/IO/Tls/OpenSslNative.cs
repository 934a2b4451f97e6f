using System.Runtime.InteropServices;

namespace NbdFast.IO.Tls;

/// <summary>
/// The few OpenSSL 3 entry points TLS-PSK needs (SslStream has no PSK API). libssl.so.3 and libcrypto.so.3
/// are loaded on first use; <see cref="IsAvailable"/> tells whether they can be.
/// </summary>
internal static unsafe partial class OpenSslNative
{
    private const string Ssl = "libssl.so.3";
    private const string Crypto = "libcrypto.so.3";

    public const int SSL_ERROR_NONE = 0;
    public const int SSL_ERROR_SSL = 1;
    public const int SSL_ERROR_WANT_READ = 2;
    public const int SSL_ERROR_WANT_WRITE = 3;
    public const int SSL_ERROR_SYSCALL = 5;
    public const int SSL_ERROR_ZERO_RETURN = 6;

    public const int SSL_CTRL_SET_DH_AUTO = 118;
    public const int SSL_CTRL_SET_MIN_PROTO_VERSION = 123;
    public const int SSL_CTRL_SET_MAX_PROTO_VERSION = 124;
    public const int TLS1_2_VERSION = 0x303;
    public const int TLS1_3_VERSION = 0x304;
    public const ulong SSL_OP_NO_RENEGOTIATION = 1UL << 30;
    public const int PSK_MAX_PSK_LEN = 512;

    private static readonly Lazy<string?> s_loadError = new(Probe);

    /// <summary>True when libssl.so.3 and libcrypto.so.3 load and export what TLS-PSK needs.</summary>
    public static bool IsAvailable => s_loadError.Value is null;

    /// <summary>Why OpenSSL is unusable, or null.</summary>
    public static string? UnavailableReason => s_loadError.Value;

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "TLS-PSK needs OpenSSL 3 (libssl.so.3), which is only used on Linux";
        }
        if (!NativeLibrary.TryLoad(Ssl, typeof(OpenSslNative).Assembly, null, out nint ssl))
        {
            return "TLS-PSK needs OpenSSL 3, but libssl.so.3 cannot be loaded";
        }
        if (!NativeLibrary.TryLoad(Crypto, typeof(OpenSslNative).Assembly, null, out nint crypto))
        {
            return "TLS-PSK needs OpenSSL 3, but libcrypto.so.3 cannot be loaded";
        }
        foreach (string name in new[] { "SSL_CTX_set_psk_server_callback", "SSL_CTX_set_ciphersuites", "TLS_server_method" })
        {
            if (!NativeLibrary.TryGetExport(ssl, name, out _))
            {
                return $"TLS-PSK needs OpenSSL 3, but libssl.so.3 lacks {name}";
            }
        }
        if (!NativeLibrary.TryGetExport(crypto, "BIO_s_mem", out _))
        {
            return "TLS-PSK needs OpenSSL 3, but libcrypto.so.3 lacks BIO_s_mem";
        }
        return null;
    }

    /// <summary>Throws <see cref="PlatformNotSupportedException"/> with a clear message when OpenSSL is unusable.</summary>
    public static void EnsureAvailable()
    {
        if (s_loadError.Value is string reason)
        {
            throw new PlatformNotSupportedException(reason);
        }
    }

    [LibraryImport(Ssl)] public static partial nint TLS_server_method();
    [LibraryImport(Ssl)] public static partial nint SSL_CTX_new(nint method);
    [LibraryImport(Ssl)] public static partial void SSL_CTX_free(nint ctx);
    [LibraryImport(Ssl)] public static partial nint SSL_CTX_ctrl(nint ctx, int cmd, nint larg, nint parg);
    [LibraryImport(Ssl)] public static partial ulong SSL_CTX_set_options(nint ctx, ulong options);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_set_num_tickets(nint ctx, nuint count);
    [LibraryImport(Ssl)] public static partial void SSL_CTX_set_psk_server_callback(nint ctx, delegate* unmanaged<nint, byte*, byte*, uint, uint> callback);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_set_cipher_list(nint ctx, byte* list);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_set_ciphersuites(nint ctx, byte* list);
    [LibraryImport(Ssl)] public static partial nint SSL_new(nint ctx);
    [LibraryImport(Ssl)] public static partial void SSL_free(nint ssl);
    [LibraryImport(Ssl)] public static partial void SSL_set_bio(nint ssl, nint rbio, nint wbio);
    [LibraryImport(Ssl)] public static partial void SSL_set_accept_state(nint ssl);
    [LibraryImport(Ssl)] public static partial int SSL_do_handshake(nint ssl);
    [LibraryImport(Ssl)] public static partial int SSL_read(nint ssl, byte* buffer, int count);
    [LibraryImport(Ssl)] public static partial int SSL_write(nint ssl, byte* buffer, int count);
    [LibraryImport(Ssl)] public static partial int SSL_get_error(nint ssl, int ret);
    [LibraryImport(Ssl)] public static partial int SSL_shutdown(nint ssl);
    [LibraryImport(Ssl)] public static partial int SSL_set_ex_data(nint ssl, int index, nint data);
    [LibraryImport(Ssl)] public static partial nint SSL_get_ex_data(nint ssl, int index);
    [LibraryImport(Ssl)] public static partial nint SSL_get_version(nint ssl);
    [LibraryImport(Ssl)] public static partial nint SSL_get_current_cipher(nint ssl);
    [LibraryImport(Ssl)] public static partial nint SSL_CIPHER_get_name(nint cipher);

    [LibraryImport(Crypto)] public static partial nint BIO_s_mem();
    [LibraryImport(Crypto)] public static partial nint BIO_new(nint method);
    [LibraryImport(Crypto)] public static partial int BIO_free(nint bio);
    [LibraryImport(Crypto)] public static partial int BIO_read(nint bio, byte* buffer, int count);
    [LibraryImport(Crypto)] public static partial int BIO_write(nint bio, byte* buffer, int count);
    [LibraryImport(Crypto)] public static partial nuint BIO_ctrl_pending(nint bio);
    [LibraryImport(Crypto)] public static partial nuint ERR_get_error();
    [LibraryImport(Crypto)] public static partial void ERR_error_string_n(nuint error, byte* buffer, nuint length);
    [LibraryImport(Crypto)] public static partial void ERR_clear_error();

    /// <summary>The oldest queued OpenSSL error as text (and clears the queue), or null.</summary>
    public static string? TakeError()
    {
        nuint error = ERR_get_error();
        if (error == 0)
        {
            return null;
        }
        byte* text = stackalloc byte[256];
        ERR_error_string_n(error, text, 256);
        ERR_clear_error();
        return Marshal.PtrToStringUTF8((nint)text);
    }

    /// <summary>Sets a cipher string through one of the <c>const char*</c> setters.</summary>
    public static bool SetCipherString(nint ctx, string value, bool tls13)
    {
        byte[] bytes = System.Text.Encoding.ASCII.GetBytes(value + "\0");
        fixed (byte* p = bytes)
        {
            return (tls13 ? SSL_CTX_set_ciphersuites(ctx, p) : SSL_CTX_set_cipher_list(ctx, p)) == 1;
        }
    }
}
