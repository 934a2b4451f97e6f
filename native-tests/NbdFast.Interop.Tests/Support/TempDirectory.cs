namespace NbdFast.Interop.Tests.Support;

/// <summary>A private temp directory for images, deleted on Dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Path = Directory.CreateTempSubdirectory("nbdfast-it-").FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes <paramref name="size"/> pseudo-random bytes (reproducible from <paramref name="seed"/>) to NAME and returns them.</summary>
    public byte[] WriteRandom(string name, int size, int seed)
    {
        byte[] data = new byte[size];
        new Random(seed).NextBytes(data);
        System.IO.File.WriteAllBytes(File(name), data);
        return data;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
